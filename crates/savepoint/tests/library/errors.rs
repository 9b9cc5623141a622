use rewind_savepoint::{Error, Location, SavepointReader};

#[tokio::test]
async fn empty_location_is_not_a_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::parse(dir.path().to_str().unwrap()).unwrap();
    let err = SavepointReader::open(location).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .ends_with("not a savepoint (no _manifest.json and no files)"),
        "{err}"
    );
}
