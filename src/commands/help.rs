//! `orchestrate help [COMMAND…]`: the long help of orchestrate or of a command. Our own
//! command rather than clap's built-in one, so that `orchestrate help --help` works too.

use crate::cli::HelpArgs;
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::ui::Ui;

pub fn run(args: &HelpArgs, ui: &Ui) -> Result<i32> {
    match crate::cli::long_help(&args.command) {
        Some(text) => {
            ui.print(&text);
            Ok(exit_codes::OK)
        }
        None => Err(Error::msg(format!(
            "no command `{}`",
            crate::ui::printable(&args.command.join(" "))
        ))
        .with_hint("`orchestrate help` lists the commands")
        .with_code(exit_codes::USAGE)),
    }
}
