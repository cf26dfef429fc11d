//! `orchestrate`: run coding-agent workers in parallel, one per stream of tasks.
//!
//! Engine modules (`taskdb`, `graph`, `state`, `git`, `scheduler`, `worker`) know nothing of
//! clap or the terminal; `commands` wires them to the CLI and `ui` is the only place that prints.

pub mod activity;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod exit_codes;
pub mod git;
pub mod graph;
pub mod project;
pub mod scheduler;
pub mod setup;
pub mod state;
pub mod taskdb;
pub mod ui;
pub mod worker;
pub mod workspace;
