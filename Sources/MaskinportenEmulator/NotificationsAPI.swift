import BrokerCrypto
import BrokerPOSIX
package import FoundationEssentials
import NIOConcurrencyHelpers
import NIOHTTP1

/// Altinn's Notifications API as the emulator plays it: orders (the order chain API, instant
/// e-mail and SMS, and the older e-mail and SMS orders), their status, shipments and the
/// shipment feed. Tokens are checked as Altinn checks them (signature, expiry, the scope
/// `altinn:serviceowner/notifications.create`, the `urn:altinn:org` claim); a test can revoke the
/// tokens issued so far, so that the next call gets 401.
///
/// It keeps what it was sent in memory only, and counts it; the recipients it stores are the
/// test's own made-up ones.
package struct NotificationsState: Sendable {
    /// Orders by id.
    var orders: [String: StoredOrder] = [:]
    /// Order chains by the sender's organisation and `idempotencyId`: a repeat gets the same ids.
    var chains: [String: [String: JSONValue]] = [:]
    /// Shipments in the order they were made: the feed's sequence.
    var shipments: [StoredOrder] = []
    /// The `jti` of each Altinn token issued since the last revocation.
    var issued: Set<String> = []
    /// Revoked tokens (`jti`): answered 401.
    var revoked: Set<String> = []
    /// Every token is answered 401 while set (a second 401 after the broker's refresh).
    var revokeAll = false
    /// What the last request looked like, for tests (names only, and the token's `jti`).
    package var lastRequest: SeenRequest?
    /// Counters.
    package var stats = NotificationsStats()

    package init() {}
}

/// One order as stored.
struct StoredOrder: Sendable {
    var id: String
    var shipmentId: String
    var sequence: Int
    var kind: String
    var sendersReference: String?
    var created: Date
    var recipients: Int
}

/// What a test may ask about the last request the Notifications API got.
package struct SeenRequest: Sendable, Codable, Equatable {
    /// The method.
    package var method: String
    /// The path, without its query.
    package var path: String
    /// The query, as sent.
    package var query: String?
    /// The names of the headers, lowercased.
    package var headerNames: [String]
    /// The `jti` of the Bearer token, when it was one of the emulator's.
    package var tokenID: String?
    /// The Platform Access Token header, when one was sent.
    package var platformAccessToken: String?
    /// The body's size.
    package var bodyBytes: Int
    /// The serial number of the connection it came on: the same for calls on a kept connection.
    package var connection: Int

    enum CodingKeys: String, CodingKey {
        case method, path, query, connection
        case headerNames = "header_names"
        case tokenID = "token_id"
        case platformAccessToken = "platform_access_token"
        case bodyBytes = "body_bytes"
    }
}

/// `GET /_emulator/notifications`: the counters and the last request.
struct NotificationsReport: Codable {
    var stats: NotificationsStats
    var lastRequest: SeenRequest?

    enum CodingKeys: String, CodingKey {
        case stats
        case lastRequest = "last_request"
    }
}

/// The Notifications API's counters.
package struct NotificationsStats: Sendable, Codable, Equatable {
    /// Requests to the API.
    package var requests = 0
    /// Requests refused with 401.
    package var unauthorized = 0
    /// Requests refused with 403.
    package var forbidden = 0
    /// Orders made (repeats of an `idempotencyId` not counted).
    package var ordersCreated = 0
    /// Orders refused as invalid (400).
    package var invalid = 0

    package init() {}

    enum CodingKeys: String, CodingKey {
        case requests, unauthorized, forbidden
        case ordersCreated = "orders_created"
        case invalid
    }
}

extension Emulator {
    /// The Notifications API's state and counters.
    package var notifications: NotificationsState {
        notificationsState.withLockedValue { $0 }
    }

    /// Revokes every Altinn token issued so far (with `all`, every token until `restore()`).
    package func revokeTokens(all: Bool = false) {
        notificationsState.withLockedValue { state in
            state.revoked.formUnion(state.issued)
            state.issued = []
            if all { state.revokeAll = true }
        }
    }

    /// Ends `revokeTokens(all: true)`.
    package func restoreTokens() {
        notificationsState.withLockedValue { $0.revokeAll = false }
    }

    /// Notes an Altinn token issued, so that a revocation can name it.
    func issuedAltinnToken(jti: String) {
        notificationsState.withLockedValue { state in
            if state.issued.count > 10_000 { state.issued = [] }
            state.issued.insert(jti)
        }
    }
}

extension EmulatorServer {
    static let notificationsPrefix = "/notifications/api/v1/"
    static let notificationsScope = "altinn:serviceowner/notifications.create"

    /// `/notifications/api/v1/...`: the token checked, then the endpoint.
    func notificationsEndpoint(_ request: EmulatorRequest) -> EmulatorReply {
        let emulator = self.emulator
        let authorization = request.head.headers.first(name: "Authorization")
        let bearer = authorization.flatMap { $0.lowercased().hasPrefix("bearer ") ? String($0.dropFirst(7)) : nil }
        let verified = emulator.verifiedClaims(
            bearer, issuer: emulator.altinnPlatform + "/authentication/api/v1/openid/", issuerName: "Altinn", tokenName: "the Altinn token",
            now: emulator.now)
        let claims = try? verified.get()
        let jti = claims?["jti"]?.string
        emulator.notificationsState.withLockedValue { state in
            state.stats.requests += 1
            state.lastRequest = SeenRequest(
                method: request.method.rawValue, path: request.path,
                query: request.head.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init),
                headerNames: request.head.headers.map { $0.name.lowercased() }, tokenID: jti,
                platformAccessToken: request.head.headers.first(name: "PlatformAccessToken"), bodyBytes: request.body.count,
                connection: request.connection)
        }
        if case .failure(let refusal) = verified {
            return notificationsRefusal(401, refusal.detail)
        }
        guard let claims else { return notificationsRefusal(401, "the token could not be read") }
        let revoked = emulator.notificationsState.withLockedValue { state in state.revokeAll || jti.map(state.revoked.contains) == true }
        if revoked { return notificationsRefusal(401, "the token has been revoked") }
        let scopes = (claims["scope"]?.string ?? "").split(separator: " ")
        guard scopes.contains(Substring(Self.notificationsScope)) else {
            return notificationsRefusal(403, "the token lacks the scope \(Self.notificationsScope)")
        }
        guard let org = claims["urn:altinn:org"]?.string, !org.isEmpty else {
            return notificationsRefusal(403, "the token has no urn:altinn:org claim: only service owners may send notifications")
        }
        var reply = faulted(.notifications) { notificationsRoute(request, org: org) }
        // Altinn's platform runs behind a load balancer that pins a client with a cookie: a
        // session with Altinn is the broker's, and the gateway must not pass it on.
        reply.headers.add(name: "Set-Cookie", value: "ARRAffinity=emulator; Path=/; HttpOnly; Secure")
        // Which connection the call came on, for a test of a client's kept connections to read
        // from the answer itself (an end-to-end header, which a proxy passes on).
        reply.headers.add(name: "Emulator-Connection", value: String(request.connection))
        return reply
    }

    private func notificationsRoute(_ request: EmulatorRequest, org: String) -> EmulatorReply {
        let path = request.path.dropFirst(Self.notificationsPrefix.count)
        let route = request.method.rawValue + " " + path
        switch route {
        case "POST future/orders": return orderChain(request, org: org)
        case "POST future/orders/instant/email": return instantOrder(request, org: org, channel: "email")
        case "POST future/orders/instant/sms": return instantOrder(request, org: org, channel: "sms")
        case "POST orders/email": return legacyOrder(request, org: org, channel: "email")
        case "POST orders/sms": return legacyOrder(request, org: org, channel: "sms")
        case "GET future/shipment/feed": return shipmentFeed(request)
        default: break
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if request.method == .GET, segments.count == 2, segments[0] == "orders" { return order(segments[1], status: false) }
        if request.method == .GET, segments.count == 3, segments[0] == "orders", segments[2] == "status" { return order(segments[1], status: true) }
        if request.method == .GET, segments.count == 3, segments[0] == "future", segments[1] == "shipment" { return shipment(segments[2]) }
        return problem(404, "Not Found", "no Notifications API endpoint \(request.method) \(request.path) in the emulator")
    }

    // MARK: Orders

    private func orderChain(_ request: EmulatorRequest, org: String) -> EmulatorReply {
        guard let body = request.decode(JSONValue.self)?.object else { return invalid(["": ["the body is not a JSON object"]]) }
        var errors: [String: [String]] = [:]
        let idempotency = body["idempotencyId"]?.string ?? ""
        if idempotency.isEmpty { errors["IdempotencyId"] = ["IdempotencyId cannot be null or empty."] }
        let recipient = body["recipient"]?.object
        let count = recipient.map { Self.recipientErrors($0, into: &errors) } ?? 0
        if recipient == nil { errors["Recipient"] = ["Must have exactly one recipient."] }
        guard errors.isEmpty else { return invalid(errors) }
        let key = org + "|" + idempotency
        if let repeated = emulator.notificationsState.withLockedValue({ $0.chains[key] }) {
            return .json(.ok, repeated)
        }
        let stored = store(kind: "order_chain", sendersReference: body["sendersReference"]?.string, recipients: count)
        let answer: [String: JSONValue] = [
            "notificationOrderId": .string(stored.id),
            "notification": .object([
                "shipmentId": .string(stored.shipmentId), "sendersReference": stored.sendersReference.map(JSONValue.string) ?? .null,
                "reminders": .array([]),
            ]),
        ]
        emulator.notificationsState.withLockedValue { $0.chains[key] = answer }
        return .json(.created, answer)
    }

    private func instantOrder(_ request: EmulatorRequest, org: String, channel: String) -> EmulatorReply {
        guard let body = request.decode(JSONValue.self)?.object else { return invalid(["": ["the body is not a JSON object"]]) }
        var errors: [String: [String]] = [:]
        let idempotency = body["idempotencyId"]?.string ?? ""
        if idempotency.isEmpty { errors["IdempotencyId"] = ["IdempotencyId cannot be null or empty."] }
        if channel == "email" {
            let email = body["recipientEmail"]?.object
            if (email?["emailAddress"]?.string ?? "").isEmpty { errors["RecipientEmail.EmailAddress"] = ["A valid email address must be provided."] }
            if (email?["emailSettings"]?.object?["body"]?.string ?? "").isEmpty { errors["RecipientEmail.EmailSettings.Body"] = ["Body must not be empty."] }
        } else {
            let sms = body["recipientSms"]?.object
            if (sms?["phoneNumber"]?.string ?? "").isEmpty { errors["RecipientSms.PhoneNumber"] = ["A valid mobile number must be provided."] }
            if (sms?["smsSettings"]?.object?["body"]?.string ?? "").isEmpty { errors["RecipientSms.SmsSettings.Body"] = ["Body must not be empty."] }
        }
        guard errors.isEmpty else { return invalid(errors) }
        let key = org + "|instant|" + idempotency
        if let repeated = emulator.notificationsState.withLockedValue({ $0.chains[key] }) {
            return .json(.ok, repeated)
        }
        let stored = store(kind: "instant_\(channel)", sendersReference: body["sendersReference"]?.string, recipients: 1)
        let answer: [String: JSONValue] = [
            "notificationOrderId": .string(stored.id),
            "notification": .object(["shipmentId": .string(stored.shipmentId), "sendersReference": stored.sendersReference.map(JSONValue.string) ?? .null]),
        ]
        emulator.notificationsState.withLockedValue { $0.chains[key] = answer }
        return .json(.created, answer)
    }

    private func legacyOrder(_ request: EmulatorRequest, org: String, channel: String) -> EmulatorReply {
        guard let body = request.decode(JSONValue.self)?.object else { return invalid(["": ["the body is not a JSON object"]]) }
        var errors: [String: [String]] = [:]
        let recipients = body["recipients"]?.array ?? []
        if recipients.isEmpty { errors["Recipients"] = ["One or more recipient is required."] }
        let field = channel == "email" ? "emailAddress" : "mobileNumber"
        for (index, recipient) in recipients.enumerated() {
            let object = recipient.object ?? [:]
            if (object[field]?.string ?? "").isEmpty && object["nationalIdentityNumber"]?.string == nil && object["organizationNumber"]?.string == nil {
                errors["Recipients[\(index)]"] = [
                    "Either a valid \(channel == "email" ? "email address" : "mobile number"), organization number or national identity number must be provided for each recipient."
                ]
            }
        }
        if (body["body"]?.string ?? "").isEmpty { errors["Body"] = ["Body must not be empty."] }
        if channel == "email" && (body["subject"]?.string ?? "").isEmpty { errors["Subject"] = ["Subject must not be empty."] }
        guard errors.isEmpty else { return invalid(errors) }
        let stored = store(kind: "legacy_\(channel)", sendersReference: body["sendersReference"]?.string, recipients: recipients.count)
        var reply = EmulatorReply.json(.accepted, ["orderId": .string(stored.id), "recipientLookup": .object(["status": "Success"])])
        reply.headers.add(name: "Location", value: emulator.altinnPlatform + Self.notificationsPrefix + "orders/" + stored.id)
        return reply
    }

    /// Checks an order chain's `recipient`: exactly one kind, with what that kind needs.
    /// Returns the number of recipients it names.
    private static func recipientErrors(_ recipient: [String: JSONValue], into errors: inout [String: [String]]) -> Int {
        let kinds = ["recipientEmail", "recipientSms", "recipientPerson", "recipientOrganization"].filter { recipient[$0] != nil }
        guard kinds.count == 1, let kind = kinds.first, let details = recipient[kind]?.object else {
            errors["Recipient"] = ["Must have exactly one recipient."]
            return 0
        }
        switch kind {
        case "recipientEmail":
            if (details["emailAddress"]?.string ?? "").isEmpty { errors["Recipient.RecipientEmail.EmailAddress"] = ["A valid email address must be provided."] }
        case "recipientSms":
            if (details["phoneNumber"]?.string ?? "").isEmpty { errors["Recipient.RecipientSms.PhoneNumber"] = ["A valid mobile number must be provided."] }
        case "recipientPerson":
            let number = details["nationalIdentityNumber"]?.string ?? ""
            if number.count != 11 || !number.allSatisfy(\.isASCIIDigit) {
                errors["Recipient.RecipientPerson.NationalIdentityNumber"] = ["National identity number must be 11 digits."]
            }
        default:
            let number = details["orgNumber"]?.string ?? ""
            if number.count != 9 || !number.allSatisfy(\.isASCIIDigit) {
                errors["Recipient.RecipientOrganization.OrgNumber"] = ["Organization number must be 9 digits."]
            }
        }
        if ["recipientEmail", "recipientSms"].contains(kind), details[kind == "recipientEmail" ? "emailSettings" : "smsSettings"] == nil {
            errors["Recipient.\(kind.prefix(1).uppercased() + kind.dropFirst()).Settings"] = ["Settings must be provided."]
        }
        return 1
    }

    private func store(kind: String, sendersReference: String?, recipients: Int) -> StoredOrder {
        emulator.notificationsState.withLockedValue { state in
            let order = StoredOrder(
                id: UUID().uuidString.lowercased(), shipmentId: UUID().uuidString.lowercased(), sequence: state.shipments.count + 1, kind: kind,
                sendersReference: sendersReference, created: emulator.now, recipients: recipients)
            state.orders[order.id] = order
            state.shipments.append(order)
            state.stats.ordersCreated += 1
            return order
        }
    }

    // MARK: Reading

    private func order(_ id: String, status: Bool) -> EmulatorReply {
        guard let order = emulator.notificationsState.withLockedValue({ $0.orders[id] }) else {
            return problem(404, "Not Found", "no order \(id)")
        }
        let created = Self.iso8601(order.created)
        if status {
            return .json(
                .ok,
                [
                    "id": .string(order.id), "sendersReference": order.sendersReference.map(JSONValue.string) ?? .null,
                    "processingStatus": .object(["status": "Completed", "description": "Order processing is completed.", "lastUpdate": .string(created)]),
                    "notificationsStatusSummary": .object(["generated": .number(Double(order.recipients)), "succeeded": .number(Double(order.recipients))]),
                ])
        }
        return .json(
            .ok,
            [
                "id": .string(order.id), "creator": "emulator", "sendersReference": order.sendersReference.map(JSONValue.string) ?? .null,
                "created": .string(created), "requestedSendTime": .string(created), "notificationChannel": .string(order.kind),
            ])
    }

    private func shipment(_ id: String) -> EmulatorReply {
        guard let order = emulator.notificationsState.withLockedValue({ $0.shipments.first { $0.shipmentId == id } }) else {
            return problem(404, "Not Found", "no shipment \(id)")
        }
        return .json(.ok, Self.shipmentBody(order))
    }

    private func shipmentFeed(_ request: EmulatorRequest) -> EmulatorReply {
        let query = request.query
        let seq = query["seq"].map { Int($0) } ?? 0
        let size = query["pageSize"].map { Int($0) } ?? 50
        guard let seq, seq >= 0, let size, (1...500).contains(size) else {
            return invalid(["PageSize": ["pageSize must be between 1 and 500, and seq a whole number of 0 or more."]])
        }
        let page = emulator.notificationsState.withLockedValue { state in state.shipments.filter { $0.sequence > seq }.prefix(size) }
        return .json(.ok, ["items": .array(page.map { .object(Self.shipmentBody($0)) })])
    }

    private static func shipmentBody(_ order: StoredOrder) -> [String: JSONValue] {
        [
            "shipmentId": .string(order.shipmentId), "sequenceNumber": .number(Double(order.sequence)),
            "sendersReference": order.sendersReference.map(JSONValue.string) ?? .null, "type": "Notification", "status": "Order_Completed",
            "lastUpdate": .string(iso8601(order.created)),
        ]
    }

    // MARK: Answers

    private func notificationsRefusal(_ status: Int, _ detail: String) -> EmulatorReply {
        emulator.notificationsState.withLockedValue { state in
            if status == 401 { state.stats.unauthorized += 1 } else { state.stats.forbidden += 1 }
        }
        var reply = problem(status, status == 401 ? "Unauthorized" : "Forbidden", detail)
        if status == 401 { reply.headers.add(name: "WWW-Authenticate", value: "Bearer error=\"invalid_token\"") }
        return reply
    }

    private func invalid(_ errors: [String: [String]]) -> EmulatorReply {
        emulator.notificationsState.withLockedValue { $0.stats.invalid += 1 }
        var reply = EmulatorReply.json(
            .badRequest,
            [
                "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1", "title": "One or more validation errors occurred.", "status": 400,
                "errors": .object(errors.mapValues { .array($0.map(JSONValue.string)) }),
            ])
        reply.headers.replaceOrAdd(name: "Content-Type", value: "application/problem+json; charset=utf-8")
        return reply
    }

    private func problem(_ status: Int, _ title: String, _ detail: String) -> EmulatorReply {
        var reply = EmulatorReply.json(
            HTTPResponseStatus(statusCode: status),
            ["type": "https://tools.ietf.org/html/rfc9110", "title": .string(title), "status": .number(Double(status)), "detail": .string(detail)])
        reply.headers.replaceOrAdd(name: "Content-Type", value: "application/problem+json; charset=utf-8")
        return reply
    }

    static func iso8601(_ date: Date) -> String {
        UTCTimestamp.format(secondsSince1970: Int(date.timeIntervalSince1970.rounded(.down)))
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
