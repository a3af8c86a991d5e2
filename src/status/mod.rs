//! What the instance's life recorded and how it is shown: the state file, the status report
//! (table and JSON), and the gate `ecs.service` passes through before it starts.

pub mod bounds;
pub mod essential;
pub mod gate;
pub mod health;
pub mod report;
pub mod state;
