//! ESession protocol core.
