package import BrokerCrypto

/// A Platform Access Token issuer's key and certificate chain, loaded and checked: what
/// `check-config` describes and the token broker signs with.
package struct PlatformAccessKey: Sendable {
    /// The issuer's settings.
    package let settings: PlatformAccessTokenSettings
    /// The certificate's private key.
    package let key: RSAPrivateKey
    /// The certificate chain, leaf first (never empty: the loader refuses an empty file).
    package let chain: [Certificate]
    /// The leaf certificate, whose thumbprint names the key.
    package var certificate: Certificate { chain[0] }

    /// The key and chain of `settings`.
    package init(settings: PlatformAccessTokenSettings, key: RSAPrivateKey, chain: [Certificate]) {
        self.settings = settings
        self.key = key
        self.chain = chain
    }
}
