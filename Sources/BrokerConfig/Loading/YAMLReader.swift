/// Reads one YAML mapping strictly: every key must be asked for, and each value must have the
/// expected type. Errors carry the file, the dotted key path and the line.
///
/// Hand-written rather than `Codable` so that errors can name the key path and line, unknown
/// keys can be refused with a suggestion, and YAML's implicit typing (`0660`, `no`, `1e3`) cannot
/// change a value behind the user's back: scalars are read from their source text.
final class YAMLMapping {
    let file: String
    let path: String
    let line: Int?
    let pairs: [(key: String, value: YAMLNode, line: Int?)]
    private let known: [String]?

    /// Reads `node` as a mapping. With `known`, any other key is refused at once, before a
    /// missing key could be reported for what is only a typo.
    init(_ node: YAMLNode, file: String, path: String, known: [String]?) throws {
        self.file = file
        self.path = path
        self.line = node.line
        guard case .mapping(let mapping, _) = node else {
            throw ConfigError(.wrongType, file: file, keyPath: path, line: node.line, "expected a mapping of keys to values, found \(node.kindName)")
        }
        var pairs: [(String, YAMLNode, Int?)] = []
        for (key, value) in mapping {
            guard case .scalar(let text, _, let line) = key else {
                throw ConfigError(.wrongType, file: file, keyPath: path, line: key.line, "keys must be plain strings")
            }
            pairs.append((text, value, line))
        }
        self.pairs = pairs
        self.known = known
        if let known {
            for (key, _, line) in pairs where !known.contains(key) {
                var message = "unknown key \"\(key)\""
                if let suggestion = known.min(by: { editDistance($0, key) < editDistance($1, key) }), editDistance(suggestion, key) <= 2 {
                    message += "; did you mean \"\(suggestion)\"?"
                } else {
                    message += " (known here: \(known.joined(separator: ", ")))"
                }
                throw ConfigError(.unknownKey, file: file, keyPath: childPath(key), line: line, message)
            }
        }
    }

    /// The keys present, in file order.
    var keys: [String] { pairs.map(\.key) }

    func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func has(_ key: String) -> Bool { pairs.contains { $0.key == key } }

    /// The value under `key`.
    func node(_ key: String) -> YAMLNode? {
        assert(known?.contains(key) ?? true, "\(key) is read but not declared known at \(path)")
        return pairs.first { $0.key == key }?.value
    }

    func error(_ code: ConfigError.Code, _ key: String? = nil, _ message: String) -> ConfigError {
        let keyLine = key.flatMap { k in pairs.first { $0.key == k }?.line }
        return ConfigError(code, file: file, keyPath: key.map(childPath) ?? path, line: keyLine ?? line, message)
    }

    // MARK: - Typed access

    func mapping(_ key: String, known: [String]) throws -> YAMLMapping? {
        guard let node = node(key), !node.isNull else { return nil }
        return try YAMLMapping(node, file: file, path: childPath(key), known: known)
    }

    func string(_ key: String) throws -> String? {
        guard let node = node(key), !node.isNull else { return nil }
        guard case .scalar(let text, _, _) = node else {
            throw error(.wrongType, key, "expected a single value, found \(node.kindName)")
        }
        return text
    }

    func requiredString(_ key: String, what: String) throws -> String {
        guard let value = try string(key) else {
            throw error(.missingKey, key, "\(what) is required")
        }
        guard !value.allSatisfy(\.isWhitespace) else {
            throw error(.invalidValue, key, "\(what) must not be empty")
        }
        return value
    }

    func bool(_ key: String) throws -> Bool? {
        guard let text = try string(key) else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default: throw error(.wrongType, key, "expected true or false, found \"\(text)\"")
        }
    }

    func integer(_ key: String) throws -> Int? {
        guard let text = try string(key) else { return nil }
        guard let value = Int(text) else { throw error(.wrongType, key, "expected a whole number, found \"\(text)\"") }
        return value
    }

    func double(_ key: String) throws -> Double? {
        guard let text = try string(key) else { return nil }
        guard let value = Double(text), value.isFinite else { throw error(.wrongType, key, "expected a number, found \"\(text)\"") }
        return value
    }

    /// A list of single values. A lone value where a list belongs is refused, so that
    /// `scopes: a b` is not read as one scope.
    func stringList(_ key: String) throws -> [String]? {
        guard let node = node(key), !node.isNull else { return nil }
        guard case .sequence(let sequence, _) = node else {
            throw error(.wrongType, key, "expected a list (for example [a, b]), found \(node.kindName)")
        }
        return try sequence.enumerated().map { index, item in
            guard case .scalar(let text, _, _) = item else {
                throw ConfigError(
                    .wrongType, file: file, keyPath: "\(childPath(key))[\(index)]", line: item.line, "expected a single value, found \(item.kindName)")
            }
            return text
        }
    }

    /// A list of mappings (`keys:`), each read with `known` and named by its index in errors
    /// (`profiles.notifications.keys[1]`).
    func mappingList(_ key: String, known: [String]) throws -> [YAMLMapping]? {
        guard let node = node(key), !node.isNull else { return nil }
        guard case .sequence(let sequence, _) = node else {
            throw error(.wrongType, key, "expected a list of mappings (- { encoded_jwk_file: ... }), found \(node.kindName)")
        }
        return try sequence.enumerated().map { index, item in
            try YAMLMapping(item, file: file, path: "\(childPath(key))[\(index)]", known: known)
        }
    }

    /// Each entry of a mapping whose keys are names (profiles, environments).
    func namedMappings(_ key: String, known: [String]) throws -> [(name: String, mapping: YAMLMapping)] {
        guard let node = node(key), !node.isNull else { return [] }
        let outer = try YAMLMapping(node, file: file, path: childPath(key), known: nil)
        return try outer.pairs.map { name, value, _ in
            (name, try YAMLMapping(value, file: file, path: outer.childPath(name), known: known))
        }
    }
}

// MARK: - Helpers

extension YAMLNode {
    var kindName: String {
        switch self {
        case .scalar: "a single value"
        case .mapping: "a mapping"
        case .sequence: "a list"
        }
    }

    /// `~`, `null` or nothing at all.
    var isNull: Bool {
        guard case .scalar(let text, let plain, _) = self else { return false }
        return plain && ["", "~", "null", "Null", "NULL"].contains(text)
    }
}

extension String {
    var containsWhitespace: Bool { contains { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" } }
}

/// Levenshtein distance, for "did you mean" on unknown keys.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + [Int](repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
