//! `sinew`: train, evaluate and inspect models from the command line.
//!
//! `sinew train` with no options trains a small MLP on two generated spirals (no download) and
//! ends with `test accuracy: NN.NN%`. Errors print one line and exit with status 1; bad flags
//! exit with clap's status 2.

mod args;
mod augment;
mod convert;
mod datasets;
mod device;
mod generated;
mod models;
mod optimizers;
mod perceptron;
mod predict;
mod train;

use clap::Parser;

use args::{Cli, Command, DatasetName};
use clap::ValueEnum;

fn run(cli: Cli) -> sinew::Result<()> {
    match cli.command {
        Command::Train(a) => train::train(&a),
        Command::Eval(a) => train::eval(&a),
        Command::Predict(a) => predict::predict(&a),
        Command::Convert(a) => convert::convert(&a),
        Command::Summary(a) => {
            models::summary(a.model.model, &datasets::info(a.model.dataset, &a.data)?)
        }
        Command::Datasets(a) => {
            let root = datasets::root(&a);
            println!("data root: {}", root.display());
            for name in DatasetName::value_variants() {
                let label = name
                    .to_possible_value()
                    .map(|v| v.get_name().to_string())
                    .unwrap_or_default();
                match datasets::location(*name, &root) {
                    None if *name == DatasetName::Csv => {
                        println!("  {label:<14} yours    --data FILE.csv")
                    }
                    None if *name == DatasetName::Folder => {
                        println!("  {label:<14} yours    --data DIR (DIR/<class>/*.png|jpg)")
                    }
                    None => println!("  {label:<14} generated (no download)"),
                    Some((dir, _)) => {
                        let state = if datasets::found(*name, &root) {
                            "found"
                        } else {
                            "MISSING"
                        };
                        println!("  {label:<14} {state:<8} {}", dir.display());
                    }
                }
            }
            Ok(())
        }
    }
}

/// Restores the default action of SIGPIPE (the Rust runtime ignores it, which turns a closed
/// pipe, as in `sinew summary | head`, into a panic at the next `println!`): the process ends
/// quietly when its reader goes away, as `cat` or `ls` do.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: `signal` with a valid signal number and `SIG_DFL` only changes this process's
    // disposition of SIGPIPE; it runs first in `main`, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("sinew: {e}");
        std::process::exit(1);
    }
}
