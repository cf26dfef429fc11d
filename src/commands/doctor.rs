//! `orchestrate doctor`: checks everything a run needs and says what to fix ([`crate::doctor`]
//! checks, [`crate::ui::doctor`] renders). It changes nothing; it exits with `FAILURE` when any
//! check blocks a run.

use crate::cli::{DoctorArgs, GlobalArgs};
use crate::doctor;
use crate::error::Result;
use crate::exit_codes;
use crate::project::Project;
use crate::ui::Ui;

pub fn run(global: &GlobalArgs, _args: &DoctorArgs, ui: &Ui) -> Result<i32> {
    let project = Project::from_env(global.project.as_deref()).map_err(Into::into);
    let checks = doctor::checks(project, &|project| super::context::locate(global, project));
    ui.print(&crate::ui::doctor::render(&checks, ui));
    Ok(if doctor::blocking(&checks) == 0 {
        exit_codes::OK
    } else {
        exit_codes::FAILURE
    })
}
