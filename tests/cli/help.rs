use rewind_tests::rewind;

#[test]
fn help_texts() {
    for command in [
        vec!["--help"],
        vec!["inspect", "--help"],
        vec!["state", "--help"],
        vec!["validate", "--help"],
        vec!["generate", "--help"],
        vec!["run", "--help"],
        vec!["list", "--help"],
        vec!["savepoint", "--help"],
        vec!["stop", "--help"],
        vec!["cancel", "--help"],
        vec!["demo", "--help"],
    ] {
        let run = rewind(&command);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let name = command.join("_").replace("--", "");
        insta::assert_snapshot!(name, run.stdout);
    }
}

#[test]
fn exit_codes_are_documented() {
    let run = rewind(&["--help"]);
    for line in ["0  success", "1  a finding", "2  an error"] {
        assert!(run.stdout.contains(line), "{line}");
    }
}

#[test]
fn bad_arguments_exit_2() {
    let run = rewind(&["inspect"]);
    assert_eq!(run.code, 2);
    let run = rewind(&["frobnicate"]);
    assert_eq!(run.code, 2);
}
