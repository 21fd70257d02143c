import Testing

/// Every suite that starts `ballast` child processes, run one after another, so that a loaded test run does not
/// also start several servers at once. Children are started with `ChildProcess` (posix_spawn), not Foundation's
/// `Process`: its `run()` crashed in a test process holding about 1,400 descriptors (it closes them in the child
/// one by one).
@Suite("Child processes", .serialized, .timeLimit(.minutes(10)))
enum ChildProcesses {}
