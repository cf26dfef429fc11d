//! `orchestrate man [--out-dir DIR]`: the manual page on stdout, or every page into a folder.

use crate::cli::ManArgs;
use crate::error::{Error, Result};
use crate::exit_codes;
use crate::ui::Ui;

pub fn run(args: &ManArgs, ui: &Ui) -> Result<i32> {
    let pages = crate::cli::man_pages();
    let Some(dir) = &args.out_dir else {
        ui.print(&pages[0].1);
        return Ok(exit_codes::OK);
    };
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::msg(format!("cannot create {}: {e}", dir.display()))
            .with_hint("choose a folder you can write to, e.g. ~/.local/share/man/man1")
    })?;
    for (name, page) in &pages {
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page).map_err(|e| {
            Error::msg(format!("cannot write {}: {e}", path.display()))
                .with_hint("choose a folder you can write to, e.g. ~/.local/share/man/man1")
        })?;
    }
    ui.print(&format!(
        "wrote {} manual pages to {} (`man orchestrate` finds them when that folder's parent is on MANPATH)",
        pages.len(),
        dir.display()
    ));
    Ok(exit_codes::OK)
}
