import BrokerTestSupport
import Foundation
import Testing

@testable import BrokerConfig
@testable import BrokerServer
@testable import BrokerTokens

@Suite("The status snapshot's STATUS line")
struct BrokerSnapshotTests {
    static func snapshot(_ states: [ProfileStatus.State?]) throws -> BrokerSnapshot {
        let profile = try #require(try ConfigFixture().load(ConfigFixture.profile).profiles.first)
        let entries = states.map { state in
            BrokerSnapshot.ProfileEntry(profile: profile, status: state.map { ProfileStatus(state: $0) }, unavailable: state == nil ? "no key" : nil)
        }
        return BrokerSnapshot(profiles: entries, platformAccessTokens: [], takenAt: Date())
    }

    @Test("counts each state once, in name order; a profile that could not load is unavailable")
    func counts() throws {
        let mixed = try Self.snapshot([.ready, .failing, nil, .ready, .degraded])
        #expect(mixed.statusLine == "serving 5 profiles: 1 degraded, 1 failing, 2 ready, 1 unavailable")
        #expect(try Self.snapshot([.refreshing]).statusLine == "serving 1 profile: 1 refreshing")
        #expect(try Self.snapshot([]).statusLine == "serving 0 profiles")
    }
}
