//! CSV reader: target columns and kinds, and malformed files.

use crate::common;

use sinew_data::{
    CsvDataset, CsvOptions, DataError, Dataset, Input, Target, TargetColumn, TargetKind,
};

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let path = common::scratch_dir(name).join("data.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn integer_class_in_last_column() {
    let path = write("csv-class", "a,b,label\n1.5,2,0\n-3,4e1,2\n");
    let ds = CsvDataset::from_path(&path, &CsvOptions::default()).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.num_features(), 2);
    assert_eq!(ds.feature_names(), &["a", "b"]);
    assert_eq!(ds.features(), &[1.5, 2.0, -3.0, 40.0]);
    let s = ds.get(1).unwrap();
    assert_eq!(s.input, Input::Features(vec![-3.0, 40.0]));
    assert_eq!(s.target, Target::Class(2));
}

#[test]
fn named_categorical_target_in_the_middle() {
    let path = write(
        "csv-cat",
        "x;species;y\n1;setosa;2\n3;virginica;4\n5;setosa;6\n",
    );
    let options = CsvOptions {
        target: TargetColumn::Name("species".into()),
        kind: TargetKind::Categorical,
        delimiter: b';',
        ..Default::default()
    };
    let ds = CsvDataset::from_path(&path, &options).unwrap();
    assert_eq!(ds.classes(), &["setosa", "virginica"]);
    assert_eq!(
        ds.targets(),
        &[Target::Class(0), Target::Class(1), Target::Class(0)]
    );
    assert_eq!(ds.get(1).unwrap().input, Input::Features(vec![3.0, 4.0]));
}

#[test]
fn regression_target_without_header() {
    let path = write("csv-value", "0.5,1,2\n0.25,3,4\n");
    let options = CsvOptions {
        target: TargetColumn::Index(0),
        kind: TargetKind::Value,
        has_headers: false,
        ..Default::default()
    };
    let ds = CsvDataset::from_path(&path, &options).unwrap();
    assert_eq!(ds.targets(), &[Target::Value(0.5), Target::Value(0.25)]);
    assert_eq!(ds.feature_names(), &["column 1", "column 2"]);
    assert_eq!(ds.get(1).unwrap().input, Input::Features(vec![3.0, 4.0]));
}

#[test]
fn malformed_files_name_the_file_and_line() {
    let path = write("csv-bad-num", "a,label\n1,0\nabc,1\n");
    let err = CsvDataset::from_path(&path, &CsvOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Format { .. }));
    assert!(
        msg.contains("line 3") && msg.contains("\"abc\"") && msg.contains("data.csv"),
        "{msg}"
    );

    let path = write("csv-ragged", "a,b,label\n1,2,0\n1,0\n");
    let err = CsvDataset::from_path(&path, &CsvOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::SizeMismatch { .. }));
    assert!(
        err.to_string().contains("line 3 has 2 fields, expected 3"),
        "{err}"
    );

    let path = write("csv-label", "a,label\n1,0\n2,-1\n");
    let err = CsvDataset::from_path(&path, &CsvOptions::default()).unwrap_err();
    assert!(
        matches!(err, DataError::BadLabel { index: 1, .. }),
        "{err:?}"
    );
    let path = write("csv-label2", "a,label\n1,0.5\n");
    let err = CsvDataset::from_path(&path, &CsvOptions::default()).unwrap_err();
    assert!(
        matches!(err, DataError::BadLabel { index: 0, .. }),
        "{err:?}"
    );

    let options = CsvOptions {
        target: TargetColumn::Name("missing".into()),
        ..Default::default()
    };
    let err = CsvDataset::from_path(&path, &options).unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    let missing = path.with_file_name("nope.csv");
    assert!(matches!(
        CsvDataset::from_path(&missing, &CsvOptions::default()),
        Err(DataError::Io { .. })
    ));
}

/// `nan`, `inf` and out-of-range values parse as f32 but would make every loss NaN: they are
/// errors naming the line and column (missing values are for the user to fill in).
#[test]
fn non_finite_values_are_errors() {
    for (i, (cell, col)) in [("nan", 1), ("inf", 0), ("-Infinity", 1), ("1e39", 0)]
        .into_iter()
        .enumerate()
    {
        let row = if col == 0 {
            format!("{cell},2,1")
        } else {
            format!("1,{cell},1")
        };
        let path = write(
            &format!("csv-nonfinite-{i}"),
            &format!("a,b,label\n1,2,0\n{row}\n"),
        );
        let err = CsvDataset::from_path(&path, &CsvOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::Format { .. }), "{msg}");
        assert!(
            msg.contains(&format!(
                "line 3, column {col}: \"{cell}\" is not a finite number"
            )),
            "{msg}"
        );
    }
    let path = write("csv-nonfinite-target", "NaN,1\n0.5,2\n");
    let options = CsvOptions {
        target: TargetColumn::Index(0),
        kind: TargetKind::Value,
        has_headers: false,
        ..Default::default()
    };
    let err = CsvDataset::from_path(&path, &options).unwrap_err();
    assert!(
        matches!(err, DataError::BadLabel { index: 0, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("a finite number"), "{err}");
}
