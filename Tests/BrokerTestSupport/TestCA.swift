package import Foundation

/// A certificate authority `openssl` makes for one test, and a server certificate it signed for
/// an IP address: for TLS servers the broker must trust through `ca_file`.
package struct TestCA: Sendable {
    /// The directory holding the files; it lives as long as the value.
    package let directory: TemporaryDirectory
    /// The CA's certificate (PEM): what `ca_file` names.
    package var caFile: String { directory.path("ca.pem") }
    /// The server's certificate (PEM), for `address`.
    package var certificateFile: String { directory.path("server.pem") }
    /// The server's private key (PEM).
    package var keyFile: String { directory.path("server.key") }

    /// A CA and a certificate for `address` (an IP address or a host name, in the certificate's
    /// subjectAltName).
    package static func make(for address: String) async throws -> TestCA {
        let directory = try TemporaryDirectory(prefix: "ca")
        try await Command.openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory.path("ca.key"), "-out", directory.path("ca.pem"), "-days", "2",
            "-subj", "/CN=Broker Test CA")
        try await Command.openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", directory.path("server.key"), "-out", directory.path("server.csr"), "-subj",
            "/CN=\(address)")
        let isAddress = address.contains(":") || address.split(separator: ".").allSatisfy { UInt8($0) != nil }
        try directory.write("san.cnf", "subjectAltName=\(isAddress ? "IP" : "DNS"):\(address)\n")
        try await Command.openssl(
            "x509", "-req", "-in", directory.path("server.csr"), "-CA", directory.path("ca.pem"), "-CAkey", directory.path("ca.key"),
            "-CAcreateserial", "-out", directory.path("server.pem"), "-days", "2", "-extfile", directory.path("san.cnf"))
        return TestCA(directory: directory)
    }
}
