//! TODO: fleet
