//! The result table: figure, baseline, ratio.

#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
}

struct Row {
    name: String,
    value: String,
    baseline_name: String,
    baseline: String,
    ratio: f64,
    note: String,
}

impl Row {
    /// A row, announced on stderr as it is measured.
    fn new(
        name: &str,
        (value, baseline_name, baseline): (f64, &str, f64),
        unit: &str,
        ratio: f64,
        note: String,
    ) -> Row {
        eprintln!("  {name}: {value:.3} {unit} vs {baseline_name} {baseline:.3} {unit}");
        Row {
            name: name.to_string(),
            value: format!("{value:.3} {unit}"),
            baseline_name: baseline_name.to_string(),
            baseline: format!("{baseline:.3} {unit}"),
            ratio,
            note,
        }
    }
}

/// `value / baseline`, NaN without a baseline.
fn ratio(value: f64, baseline: f64) -> f64 {
    if baseline > 0.0 {
        value / baseline
    } else {
        f64::NAN
    }
}

impl Report {
    /// Records a measurement next to its baseline; `ratio` is value / baseline.
    pub fn add(
        &mut self,
        name: &str,
        value: f64,
        baseline_name: &str,
        baseline: f64,
        unit: &str,
        note: String,
    ) {
        let measured = (value, baseline_name, baseline);
        let ratio = ratio(value, baseline);
        self.rows.push(Row::new(name, measured, unit, ratio, note));
    }

    /// Records rounds of a measurement, each next to its baseline measured in the same
    /// round (this machine's speed drifts from minute to minute): the medians, and as the
    /// ratio the median of the rounds' ratios, which the note lists.
    pub fn add_rounds(
        &mut self,
        name: &str,
        values: &[f64],
        baseline_name: &str,
        baselines: &[f64],
        unit: &str,
        note: String,
    ) {
        let ratios: Vec<f64> = values
            .iter()
            .zip(baselines)
            .map(|(v, b)| ratio(*v, *b))
            .collect();
        let listed: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        let note = format!(
            "ratio: median of {} rounds ({}); {note}",
            ratios.len(),
            listed.join("/")
        );
        let measured = (
            median(values.to_vec()),
            baseline_name,
            median(baselines.to_vec()),
        );
        self.rows
            .push(Row::new(name, measured, unit, median(ratios), note));
    }

    pub fn print(&self) {
        println!("| benchmark | value | baseline | baseline value | ratio | notes |");
        println!("|---|---|---|---|---|---|");
        for r in &self.rows {
            println!(
                "| {} | {} | {} | {} | {:.2}x | {} |",
                r.name, r.value, r.baseline_name, r.baseline, r.ratio, r.note
            );
        }
    }
}

/// Median of a few samples (0 for none).
pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples.get(samples.len() / 2).copied().unwrap_or(0.0)
}
