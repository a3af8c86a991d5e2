//! The async runtime both binaries run on.

/// One thread: the agent mostly waits, and a small idle footprint matters on every instance; the
/// operator's tool is bound by AWS's throttles, not by CPU. Exits with `program`'s name if the
/// runtime cannot start (no thread, no epoll): nothing else could run anyway.
pub fn single_threaded(program: &str) -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{program}: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    }
}
