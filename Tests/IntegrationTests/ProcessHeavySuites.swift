import BrokerTestSupport
import Testing

/// The suites that start many daemons and emulators (rotation, key-file watching, delegation),
/// run one after another rather than side by side: on a two-core machine their processes and
/// their waits for child processes would otherwise crowd out the in-process tests, whose upstream
/// deadlines (Maskinporten's 10 s `iat` window) are real.
@Suite(.serialized, .sharedKeys) enum ProcessHeavySuites {}
