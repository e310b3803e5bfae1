//! The T-SQL front end: lexer, statement tree and parser for the subset the simulator
//! answers.

pub mod ast;
pub mod lexer;
pub mod parser;

pub use parser::{parse_batch, ParseError};

#[cfg(test)]
mod tests;
