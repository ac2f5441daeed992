package import BrokerConfig

/// The delegation a caller chose for one request (`?system_user_org=...`, `?consumer_org=...`):
/// which of a profile's tokens it asks for. The profile's own token is the base variant. Each
/// variant is cached on its own (`TokenBroker.cache(for:variant:)`).
package struct TokenVariant: Sendable, Hashable {
    /// The system user's organisation: the grant's `authorization_details`.
    package var systemUserOrg: OrganisationNumber?
    /// The system user's `externalRef`.
    package var systemUserExternalRef: String?
    /// The organisation acted for: the grant's `consumer_org`.
    package var consumerOrg: OrganisationNumber?

    /// A variant with the given choices.
    package init(systemUserOrg: OrganisationNumber? = nil, systemUserExternalRef: String? = nil, consumerOrg: OrganisationNumber? = nil) {
        self.systemUserOrg = systemUserOrg
        self.systemUserExternalRef = systemUserExternalRef
        self.consumerOrg = consumerOrg
    }

    /// The profile's own token.
    package static let base = TokenVariant()

    /// Whether this is the profile's own token.
    package var isBase: Bool { self == .base }

    /// `system_user_org=991825827,external_ref=x,consumer_org=...`: the variant in audit lines.
    /// Never in a metric label (organisation numbers are unbounded).
    package var auditName: String {
        var parts: [String] = []
        if let org = systemUserOrg { parts.append("system_user_org=\(org.digits)") }
        if let ref = systemUserExternalRef { parts.append("external_ref=\(ref)") }
        if let org = consumerOrg { parts.append("consumer_org=\(org.digits)") }
        return parts.joined(separator: ",")
    }

    /// The profile this variant fetches for: the profile with the caller's choices.
    package func applied(to profile: Profile) -> Profile {
        var profile = profile
        if let org = systemUserOrg {
            profile.systemUserOrg = org
            profile.systemUserExternalRef = systemUserExternalRef
        }
        if let org = consumerOrg { profile.consumerOrg = org }
        return profile
    }

    /// The query parameters a variant is chosen by.
    package static let parameters = ["system_user_org", "system_user_external_ref", "consumer_org"]

    /// The longest `system_user_external_ref` taken.
    package static let maximumExternalRef = 128

    /// Why a caller's choice is refused.
    package enum Refusal: Error, Sendable, Equatable {
        /// A parameter the profile does not permit, or a malformed value: 400 `invalid_request`.
        case invalid(String)
        /// An organisation outside the profile's list: 403 `access_denied`.
        case denied(String)
    }

    /// The variant `parameters` (the request's query) choose for `profile`, checked against its
    /// `delegation:`.
    package static func choose(_ parameters: [String: String], for profile: Profile) -> Result<TokenVariant, Refusal> {
        choose(parameters, profile: profile.name, delegation: profile.delegation)
    }

    /// The same, for the profile named `name` with `delegation` (the request path's form: a
    /// copy of the whole profile per request cost a fifth of a cached variant's CPU).
    package static func choose(_ parameters: [String: String], profile name: String, delegation: DelegationSettings?) -> Result<TokenVariant, Refusal> {
        var variant = TokenVariant()
        func organisation(_ key: String, _ choice: DelegationSettings.Choice?) -> Result<OrganisationNumber?, Refusal> {
            guard let text = parameters[key] else { return .success(nil) }
            guard let choice else {
                return .failure(.invalid("profile \"\(name)\" does not let callers choose \(key) (its delegation: section does not list it)"))
            }
            let number: OrganisationNumber
            do { number = try OrganisationNumber(text) } catch { return .failure(.invalid("\(key): \(error.reason)")) }
            guard choice.permits(number) else {
                return .failure(.denied("profile \"\(name)\" does not let callers choose \(key) \(number.digits)"))
            }
            return .success(number)
        }
        switch organisation("system_user_org", delegation?.systemUserOrg) {
        case .failure(let refusal): return .failure(refusal)
        case .success(let org): variant.systemUserOrg = org
        }
        switch organisation("consumer_org", delegation?.consumerOrg) {
        case .failure(let refusal): return .failure(refusal)
        case .success(let org): variant.consumerOrg = org
        }
        if let ref = parameters["system_user_external_ref"] {
            guard variant.systemUserOrg != nil else { return .failure(.invalid("system_user_external_ref needs system_user_org")) }
            guard !ref.isEmpty, ref.utf8.count <= maximumExternalRef, ref.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
                return .failure(.invalid("system_user_external_ref must be 1 to \(maximumExternalRef) printable ASCII characters without spaces"))
            }
            variant.systemUserExternalRef = ref
        }
        return .success(variant)
    }
}
