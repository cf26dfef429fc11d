//! Integration tests: the real binary against a real temporary git repository and a real
//! SQLite task database in the Task Copilot schema. One test binary, one module per command.

mod support;

mod agents;
mod agreement;
mod checkout;
mod claude;
mod clean;
mod config;
mod dbfaults;
mod demo;
mod doctor;
mod logs;
mod merge;
mod one_worker;
mod parking;
mod private_files;
mod prompts;
mod radar;
mod reliability_data;
mod reliability_procs;
mod safety;
mod sandbox;
mod see;
mod setup;
mod start;
mod status;
mod stop;
mod task;
mod tc_store;
mod terminal;
mod ui_views;
mod warm_caches;
mod worktrees;
