import BallastCore
import Foundation
import Testing

@Suite("Random ids and their text")
struct FastUUIDTests {
    /// Every id is a version 4, variant 10 UUID, as `UUID()` makes, and none repeats.
    @Test func randomIdsAreVersionFourAndDistinct() {
        var seen = Set<UUID>()
        for _ in 0..<100_000 {
            let id = UUID.random()
            #expect(id.uuid.6 >> 4 == 4, "version nibble of \(id)")
            #expect(id.uuid.8 >> 6 == 0b10, "variant bits of \(id)")
            seen.insert(id)
        }
        #expect(seen.count == 100_000)
        // The 122 random bits are all used: across many ids every one of them is seen both ways.
        var ones = [Int](repeating: 0, count: 128)
        for _ in 0..<2_000 {
            withUnsafeBytes(of: UUID.random().uuid) { raw in
                for bit in 0..<128 where raw[bit / 8] & (0x80 >> UInt8(bit % 8)) != 0 { ones[bit] += 1 }
            }
        }
        let fixed = Set([48, 49, 50, 51, 64, 65])  // the version nibble and the variant bits
        for bit in 0..<128 where !fixed.contains(bit) {
            #expect((800...1_200).contains(ones[bit]), "bit \(bit) was set in \(ones[bit]) of 2,000 ids")
        }
    }

    /// The text is exactly Foundation's, lower-cased, for random ids and for the edge bytes.
    @Test func textIsTheLowerCasedStandardForm() throws {
        for _ in 0..<10_000 {
            let id = UUID()
            #expect(id.lowercasedString == id.uuidString.lowercased())
        }
        let edges = ["00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
                     "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"]
        for text in edges {
            let id = try #require(UUID(uuidString: text))
            #expect(id.lowercasedString == text)
            #expect(UUID(uuidString: id.lowercasedString) == id)
        }
    }
}
