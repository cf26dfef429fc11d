//! `orchestrate`: run coding-agent workers in parallel, one per stream of tasks.
//!
//! Engine modules (`taskdb`, `graph`, `state`, `git`, `scheduler`, `worker`) know nothing of
//! clap or the terminal; `commands` wires them to the CLI and `ui` is the only place that prints.

pub mod claims;
pub mod cli;
pub mod cmdline;
pub mod commands;
pub mod config;
pub mod dashboard;
pub mod doctor;
pub mod error;
pub mod exit_codes;
pub mod facts;
pub mod git;
pub mod graph;
pub mod merge_queue;
pub mod model;
pub mod names;
pub mod private_files;
pub mod proc;
pub mod project;
pub mod scheduler;
pub mod setup;
pub mod signals;
pub mod state;
pub mod taskdb;
pub mod timeline;
pub mod ui;
pub mod worker;
pub mod workspace;
