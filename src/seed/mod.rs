//! Seeding: deterministic fake records and the batch writer that stores them.
