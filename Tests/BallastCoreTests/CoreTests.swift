import BallastCore
import Foundation
import Testing

@Suite("Durations and deadlines")
struct CoreTests {
    /// Stored idempotency keys hash request bodies in this form: its bytes must never change.
    @Test func canonicalTextHasFixedBytes() throws {
        let value: JSONValue = ["b": 1, "a": "x/y é", "c": [true, .null, 1.5], "A": ["z": "\u{1}"]]
        #expect(try value.canonicalText() == #"{"A":{"z":"\u0001"},"a":"x/y é","b":1,"c":[true,null,1.5]}"#)
        #expect(value.text == (try value.canonicalText()))
    }

    @Test func wholeUnitsTruncateTowardZero() {
        let duration = Duration.seconds(2) + .nanoseconds(1_234_567)
        #expect(duration.wholeNanoseconds == 2_001_234_567)
        #expect(duration.wholeMicroseconds == 2_001_234)
        #expect(duration.wholeMilliseconds == 2_001)
        #expect(Duration.milliseconds(-1_500).wholeMilliseconds == -1_500)
        #expect(Duration.nanoseconds(-1).wholeMicroseconds == 0)
        #expect(Duration.zero.wholeNanoseconds == 0)
    }

    @Test func fractionsAreExactEnoughForMetricsAndLogs() {
        #expect(Duration.milliseconds(1_500).inSeconds == 1.5)
        #expect(Duration.microseconds(250).inMilliseconds == 0.25)
    }

    /// A duration whose nanoseconds do not fit in 64 bits is clamped, never a trap.
    @Test func hugeDurationsClampInsteadOfTrapping() {
        let huge = Duration.seconds(Int64.max / 2)
        #expect(huge.wholeNanoseconds == .max)
        #expect((Duration.zero - huge).wholeNanoseconds == .min)
        #expect(huge.wholeMilliseconds == .max)
    }

    /// A reader of a hostile peer's answer believes no integer beyond 2^53 (what every JSON reader holds exactly).
    @Test func figuresBeyondTwoToTheFiftyThirdAreNotIntegers() throws {
        let answer = try #require(JSONValue.parse(Data(#"{"a":9007199254740992,"b":9223372036854775807,"c":1e300,"d":5.0}"#.utf8)))
        #expect(answer["a"]?.int == 9_007_199_254_740_992)
        #expect(answer["b"]?.int == nil)
        #expect(answer["c"]?.int == nil)
        #expect(answer["d"]?.int == 5)
        #expect(answer["missing"] == nil)
        #expect(JSONValue.parse(Data("not json".utf8)) == nil)
        #expect(answer.text == #"{"a":9007199254740992,"b":9223372036854775807,"c":1e+300,"d":5}"#)
    }

    @Test func civilDatesAroundTheEpochAndLeapDays() {
        #expect(CivilDate(daysSinceEpoch: 0) == CivilDate(year: 1970, month: 1, day: 1))
        #expect(CivilDate(daysSinceEpoch: -1) == CivilDate(year: 1969, month: 12, day: 31))
        #expect(CivilDate(daysSinceEpoch: 11_016) == CivilDate(year: 2000, month: 2, day: 29))
        #expect(CivilDate(daysSinceEpoch: -719_468) == CivilDate(year: 0, month: 3, day: 1))
    }

    @Test func aDeadlinePassesAndCancelsTheWork() async {
        await #expect(throws: Deadline.Passed.self) {
            try await Deadline.run(.milliseconds(50)) { try await Task.sleep(for: .seconds(60)) }
        }
        let value = try? await Deadline.run(.seconds(60)) { 42 }
        #expect(value == 42)
    }
}
