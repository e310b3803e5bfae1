//! Engine tests that call `Instance::execute_batch` directly and check the events.

mod support;

mod backup_tests;
mod catalog_view_tests;
mod restore_tests;
mod select_tests;
