//! CSV tabular data: numeric feature columns plus one target column, held in memory as f32.
//!
//! Every column but the target is a feature and must parse as a number. The target is an integer
//! class, a categorical string (mapped to classes in sorted order), or a real value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::alloc::{checked_numel, try_with_capacity};
use crate::dataset::{Dataset, check_index};
use crate::error::{DataError, Result};
use crate::sample::{Input, Sample, Target};

/// Which column holds the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetColumn {
    /// The last column.
    Last,
    /// A zero-based column index.
    Index(usize),
    /// A column named in the header row.
    Name(String),
}

/// How the target column is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// A non-negative integer class index.
    Class,
    /// Arbitrary strings; classes are the distinct values in sorted order.
    Categorical,
    /// A real number (regression).
    Value,
}

/// Options for [`CsvDataset::from_path`].
#[derive(Clone, Debug)]
pub struct CsvOptions {
    /// The target column.
    pub target: TargetColumn,
    /// How to read the target.
    pub kind: TargetKind,
    /// Whether the first row is a header.
    pub has_headers: bool,
    /// Field delimiter.
    pub delimiter: u8,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            target: TargetColumn::Last,
            kind: TargetKind::Class,
            has_headers: true,
            delimiter: b',',
        }
    }
}

/// A tabular dataset read from CSV.
#[derive(Clone, Debug)]
pub struct CsvDataset {
    features: Vec<f32>,
    num_features: usize,
    targets: Vec<Target>,
    feature_names: Vec<String>,
    classes: Vec<String>,
}

impl CsvDataset {
    /// Reads the whole file at `path`.
    pub fn from_path(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        Self::from_reader(file, path, options)
    }

    /// Reads CSV from `reader`; `path` only names the source in errors.
    pub fn from_reader(
        reader: impl std::io::Read,
        path: &Path,
        options: &CsvOptions,
    ) -> Result<Self> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(options.has_headers)
            .delimiter(options.delimiter)
            .flexible(true)
            .from_reader(reader);
        let csv_err = |e: csv::Error| DataError::format(path, format!("CSV: {e}"));
        let header: Vec<String> = if options.has_headers {
            rdr.headers()
                .map_err(csv_err)?
                .iter()
                .map(String::from)
                .collect()
        } else {
            Vec::new()
        };
        let mut rows: Vec<csv::StringRecord> = Vec::new();
        for rec in rdr.records() {
            rows.push(rec.map_err(csv_err)?);
        }
        let width = if options.has_headers {
            header.len()
        } else {
            rows.first().map_or(0, |r| r.len())
        };
        let target_col = resolve_target(&options.target, &header, width, path)?;
        let names: Vec<String> = (0..width)
            .filter(|&c| c != target_col)
            .map(|c| {
                header
                    .get(c)
                    .cloned()
                    .unwrap_or_else(|| format!("column {c}"))
            })
            .collect();
        let mut parser = TargetParser::new(options.kind);
        let cells = checked_numel("CsvDataset", &[rows.len(), names.len()])?;
        let mut features = try_with_capacity("CsvDataset", cells)?;
        let mut raw_targets = Vec::with_capacity(rows.len());
        for (row, rec) in rows.iter().enumerate() {
            let line = row + 1 + usize::from(options.has_headers);
            if rec.len() != width {
                return Err(DataError::SizeMismatch {
                    path: path.into(),
                    detail: format!("line {line} has {} fields, expected {width}", rec.len()),
                });
            }
            for (col, field) in rec.iter().enumerate() {
                if col == target_col {
                    raw_targets.push(field.trim().to_string());
                    continue;
                }
                let value: f32 = field.trim().parse().map_err(|_| {
                    DataError::format(
                        path,
                        format!("line {line}, column {col}: cannot parse {field:?} as a number"),
                    )
                })?;
                // `nan`, `inf` and values past f32's range parse, and would make every loss
                // NaN from the first batch on: a missing value is for the user to fill in.
                if !value.is_finite() {
                    return Err(DataError::format(
                        path,
                        format!(
                            "line {line}, column {col}: {field:?} is not a finite number (fill \
                             in missing values before training)"
                        ),
                    ));
                }
                features.push(value);
            }
        }
        let targets = parser.parse_all(&raw_targets, path)?;
        Ok(CsvDataset {
            features,
            num_features: names.len(),
            targets,
            feature_names: names,
            classes: parser.classes,
        })
    }

    /// Number of feature columns.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// Feature column names (from the header, or `column <i>`).
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// Class names for [`TargetKind::Categorical`] targets (empty otherwise).
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// All features, row-major (`len() × num_features()`).
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// All targets.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }
}

impl Dataset for CsvDataset {
    type Item = Sample;
    fn len(&self) -> usize {
        self.targets.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        check_index(index, self.targets.len())?;
        let f = self.num_features;
        Ok(Sample {
            input: Input::Features(self.features[index * f..(index + 1) * f].to_vec()),
            target: self.targets[index],
        })
    }
}

/// The zero-based index of the target column.
fn resolve_target(
    target: &TargetColumn,
    header: &[String],
    width: usize,
    path: &Path,
) -> Result<usize> {
    let col = match target {
        TargetColumn::Last => width.checked_sub(1),
        TargetColumn::Index(i) => Some(*i).filter(|&i| i < width),
        TargetColumn::Name(name) => header.iter().position(|h| h.trim() == name),
    };
    col.ok_or_else(|| {
        DataError::format(
            path,
            format!("target column {target:?} not found among {width} columns {header:?}"),
        )
    })
}

/// Turns target strings into [`Target`]s, collecting class names for categorical targets.
struct TargetParser {
    kind: TargetKind,
    classes: Vec<String>,
}

impl TargetParser {
    fn new(kind: TargetKind) -> Self {
        TargetParser {
            kind,
            classes: Vec::new(),
        }
    }

    fn parse_all(&mut self, raw: &[String], path: &Path) -> Result<Vec<Target>> {
        let kind = self.kind;
        let bad = |index: usize, label: &str| DataError::BadLabel {
            path: PathBuf::from(path),
            index,
            label: label.to_string(),
            expected: match kind {
                TargetKind::Value => "a finite number".to_string(),
                _ => "a non-negative integer class".to_string(),
            },
        };
        match self.kind {
            TargetKind::Class => raw
                .iter()
                .enumerate()
                .map(|(i, s)| match s.parse::<i64>() {
                    Ok(c) if c >= 0 => Ok(Target::Class(c)),
                    _ => Err(bad(i, s)),
                })
                .collect(),
            TargetKind::Value => raw
                .iter()
                .enumerate()
                .map(|(i, s)| match s.parse::<f32>() {
                    Ok(v) if v.is_finite() => Ok(Target::Value(v)),
                    _ => Err(bad(i, s)),
                })
                .collect(),
            TargetKind::Categorical => {
                let ids: BTreeMap<&str, i64> = raw.iter().map(|s| (s.as_str(), 0)).collect();
                let ids: BTreeMap<&str, i64> = ids
                    .keys()
                    .enumerate()
                    .map(|(i, &k)| (k, i as i64))
                    .collect();
                self.classes = ids.keys().map(|k| k.to_string()).collect();
                Ok(raw.iter().map(|s| Target::Class(ids[s.as_str()])).collect())
            }
        }
    }
}
