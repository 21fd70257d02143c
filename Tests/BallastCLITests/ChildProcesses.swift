import Testing

/// Every suite that starts `ballast` child processes, run one after another: Foundation's `Process` watches
/// children through libdispatch, and several suites launching processes at once under a loaded test run is
/// where the test process was seen to crash inside libdispatch.
@Suite("Child processes", .serialized, .timeLimit(.minutes(10)))
enum ChildProcesses {}
