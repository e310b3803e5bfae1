//! TODO: web
