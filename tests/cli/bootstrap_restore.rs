//! Bootstrap a savepoint from CSV or Parquet, then a job restores it and continues.

use std::path::Path;
use std::sync::Arc;

use rewind_tests::rewind;

use crate::crash::keyed_count_command;

fn total(savepoint: &str) -> Vec<(i64, i64)> {
    let state = rewind(&[
        "state", savepoint, "counter", "count", "--format", "csv", "--limit", "100000",
    ]);
    assert_eq!(state.code, 0, "{}", state.stderr);
    let mut rows: Vec<(i64, i64)> = state
        .stdout
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap())
        })
        .collect();
    rows.sort();
    rows
}

fn write_parquet(path: &Path) {
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("key", arrow_schema::DataType::Int64, false),
        arrow_schema::Field::new("value", arrow_schema::DataType::Int64, true),
    ]));
    let batch = arrow_array::RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(arrow_array::Int64Array::from_iter_values(0..10)),
            Arc::new(arrow_array::Int64Array::from(vec![1000; 10])),
        ],
    )
    .unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn bootstrap_from_csv_and_parquet_then_restore() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("counts.csv");
    let mut text = String::from("key,value\n");
    for k in 0..10 {
        text.push_str(&format!("{k},1000\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let parquet = dir.path().join("counts.parquet");
    write_parquet(&parquet);

    // Without the app: how many events each key gets.
    let plain = dir.path().join("plain");
    let status = keyed_count_command()
        .args([
            "--keys",
            "10",
            "--events",
            "700",
            "--output",
            dir.path().join("o").to_str().unwrap(),
        ])
        .args(["--savepoint-on-finish", plain.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let plain = total(plain.to_str().unwrap());

    for (name, file) in [("csv", &csv), ("parquet", &parquet)] {
        let boot = dir.path().join(format!("boot-{name}"));
        let run = rewind(&[
            "bootstrap",
            boot.to_str().unwrap(),
            "--job",
            "keyed-count",
            "--parallelism",
            "2",
            "--state",
            &format!("counter/count={}", file.display()),
        ]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        let end = dir.path().join(format!("end-{name}"));
        let status = keyed_count_command()
            .args([
                "--keys",
                "10",
                "--events",
                "700",
                "--output",
                dir.path().join(format!("out-{name}")).to_str().unwrap(),
            ])
            .args([
                "--from-savepoint",
                boot.to_str().unwrap(),
                "--savepoint-on-finish",
                end.to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(status.success(), "{name}");
        let expected: Vec<(i64, i64)> = plain.iter().map(|&(k, v)| (k, v + 1000)).collect();
        assert_eq!(total(end.to_str().unwrap()), expected, "{name}");
    }
}
