//! Compatibility tests: every golden savepoint in fixtures/ reads exactly as recorded, and
//! every corrupt one fails with exactly the recorded error.

mod corrupt;
mod engine_windows;
mod golden;
mod make;
mod make_edge;
mod make_v1_1;
