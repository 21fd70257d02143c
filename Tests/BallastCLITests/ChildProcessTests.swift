import BallastTestSupport
import Foundation
import Testing

extension ChildProcesses {
    /// `ChildProcess` starts children from a parent that holds thousands of descriptors (Foundation's `Process`
    /// crashed there), and the child inherits none of them.
    @Suite("Starting child processes")
    struct ChildProcessTests {
        @Test
        func aChildStartsBesideThousandsOfOpenDescriptorsAndInheritsNone() async throws {
            var held: [Int32] = []
            defer { for fd in held { close(fd) } }
            for _ in 0..<2_500 {
                let fd = open("/dev/null", O_RDONLY)
                guard fd >= 0 else { break }
                held.append(fd)
            }
            try #require(held.count >= 2_000, "the test needs room for 2,000 descriptors (ulimit -n)")
            let child = try ChildProcess("/bin/ls", ["/proc/self/fd"])
            #expect(try await child.wait(timeout: .seconds(30)) == 0)
            // stdin, stdout, stderr and the folder ls itself has open: nothing of the parent's.
            let descriptors = child.standardOutput.split(separator: "\n").compactMap { Int($0) }
            #expect(descriptors.allSatisfy { $0 <= 3 }, "inherited: \(descriptors.filter { $0 > 3 }.prefix(10))")
            #expect(Set(descriptors).isSuperset(of: [0, 1, 2]))
        }

        @Test
        func exitStatusesOutputAndSignalsComeThrough() async throws {
            let failing = try ChildProcess("/bin/sh", ["-c", "echo out; echo err >&2; exit 7"], environment: ["PATH": "/usr/bin:/bin"])
            #expect(try await failing.wait(timeout: .seconds(30)) == 7)
            #expect(failing.standardOutput == "out\n")
            #expect(failing.standardError == "err\n")
            let sleeper = try ChildProcess("/bin/sleep", ["30"])
            #expect(sleeper.isRunning)
            sleeper.signal(SIGKILL)
            #expect(try await sleeper.wait(timeout: .seconds(30)) == SIGKILL)
            let folder = FileManager.default.temporaryDirectory.path
            let located = try ChildProcess("/bin/pwd", [], workingDirectory: folder)
            #expect(try await located.wait(timeout: .seconds(30)) == 0)
            #expect(located.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == URL(fileURLWithPath: folder).resolvingSymlinksInPath().path)
        }
    }
}
