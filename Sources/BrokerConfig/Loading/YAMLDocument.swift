import CYAML

/// A YAML node as the configuration reads it: every scalar is its source text (no implicit
/// typing: `YAMLMapping` converts and checks), each node with the line it starts on.
///
/// Aliases are resolved to the node their anchor names. The tree is a value: an alias shares its
/// anchor's storage, so a document of nested aliases ("billion laughs") stays its own size.
enum YAMLNode {
    /// A single value; `plain` when it was written without quotes or a block indicator (only a
    /// plain `~`, `null` or nothing is null).
    case scalar(String, plain: Bool, line: Int)
    case mapping([(key: YAMLNode, value: YAMLNode)], line: Int)
    case sequence([YAMLNode], line: Int)

    /// The line the node starts on, from 1.
    var line: Int {
        switch self {
        case .scalar(_, _, let line), .mapping(_, let line), .sequence(_, let line): line
        }
    }
}

/// Why a text is not a YAML document the configuration can read.
enum YAMLSyntaxError: Error {
    /// libyaml's scanner or parser, or the composer, refused the text at `line`:`column`;
    /// `context` is what it was reading (libyaml's words), `problem` what it found.
    case syntax(context: String?, problem: String, line: Int, column: Int)
    /// One mapping holds these keys more than once; `line` is the first one's.
    case duplicateKeys([String], line: Int)
    /// The text could not be decoded (libyaml's reader).
    case unreadable(problem: String)
    /// libyaml ran out of memory.
    case memory
}

/// Composes YAML text into one `YAMLNode`, from libyaml's event parser.
///
/// The configuration is read through libyaml directly rather than a YAML library for Swift:
/// those bring Foundation (and with it ICU's data, most of the executable) for number and date
/// conversions the strict reader does not want anyway.
enum YAMLDocument {
    /// The single document in `text`, or nil when the text holds none (empty, or comments only).
    static func compose(_ text: String) throws(YAMLSyntaxError) -> YAMLNode? {
        var text = text
        // libyaml's parser points at itself (its reader's state): it lives at one address.
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        parser.initialize(to: yaml_parser_t())
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else { throw .memory }
        defer { yaml_parser_delete(parser) }
        let composed = text.withUTF8 { bytes in
            yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(parser, bytes.baseAddress, bytes.count)
            var composer = Composer(parser: parser)
            return Result { () throws(YAMLSyntaxError) in try composer.document() }
        }
        return try composed.get()
    }

    /// How deep lists and mappings may nest: a configuration needs five levels; a file of a
    /// million `[` would otherwise take the composer's recursion past the stack.
    static let maximumDepth = 64

    private struct Composer {
        let parser: UnsafeMutablePointer<yaml_parser_t>
        var anchors: [String: YAMLNode] = [:]
        var depth = 0

        mutating func document() throws(YAMLSyntaxError) -> YAMLNode? {
            var event = try next()  // the stream's start
            event.delete()
            event = try next()
            guard event.type != YAML_STREAM_END_EVENT else {
                event.delete()
                return nil
            }
            event.delete()  // the document's start
            let root = try node(from: try next())
            try next().delete()  // the document's end
            let after = try next()
            defer { after.delete() }
            guard after.type == YAML_STREAM_END_EVENT else {
                throw .syntax(
                    context: "expected a single document in the stream", problem: "but found another document", line: after.line, column: after.column)
            }
            return root
        }

        /// The node `event` starts (consumed, with the events of its content).
        mutating func node(from event: Event) throws(YAMLSyntaxError) -> YAMLNode {
            defer { event.delete() }
            let line = event.line
            depth += 1
            defer { depth -= 1 }
            guard depth <= YAMLDocument.maximumDepth else {
                throw .syntax(
                    context: nil, problem: "lists and mappings nest deeper than \(YAMLDocument.maximumDepth) levels", line: line, column: event.column)
            }
            let node: YAMLNode
            let anchor: UnsafeMutablePointer<yaml_char_t>?
            switch event.type {
            case YAML_ALIAS_EVENT:
                let name = Self.string(event.raw.data.alias.anchor)
                guard let target = anchors[name] else {
                    throw .syntax(context: nil, problem: "found undefined alias", line: line, column: event.column)
                }
                return target
            case YAML_SCALAR_EVENT:
                let scalar = event.raw.data.scalar
                let value = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
                node = .scalar(value, plain: scalar.style == YAML_PLAIN_SCALAR_STYLE, line: line)
                anchor = scalar.anchor
            case YAML_SEQUENCE_START_EVENT:
                anchor = event.raw.data.sequence_start.anchor
                var items: [YAMLNode] = []
                while true {
                    let item = try next()
                    if item.type == YAML_SEQUENCE_END_EVENT {
                        item.delete()
                        break
                    }
                    items.append(try self.node(from: item))
                }
                node = .sequence(items, line: line)
            case YAML_MAPPING_START_EVENT:
                anchor = event.raw.data.mapping_start.anchor
                var pairs: [(key: YAMLNode, value: YAMLNode)] = []
                while true {
                    let key = try next()
                    if key.type == YAML_MAPPING_END_EVENT {
                        key.delete()
                        break
                    }
                    let keyNode = try self.node(from: key)
                    pairs.append((keyNode, try self.node(from: try next())))
                }
                try Self.refuseDuplicates(pairs)
                node = .mapping(pairs, line: line)
            default:
                // libyaml sends nothing else inside a document.
                throw .syntax(context: nil, problem: "found an unexpected event", line: line, column: event.column)
            }
            // Registered once the node is whole: an alias inside its own anchor is undefined.
            if let anchor { anchors[Self.string(anchor)] = node }
            return node
        }

        /// A mapping's scalar keys, each at most once (keys that are not scalars are refused by
        /// `YAMLMapping`, with their line).
        static func refuseDuplicates(_ pairs: [(key: YAMLNode, value: YAMLNode)]) throws(YAMLSyntaxError) {
            var firstLine: [String: Int] = [:]
            var repeated: Set<String> = []
            for (key, _) in pairs {
                guard case .scalar(let text, _, let line) = key else { continue }
                if firstLine[text] == nil { firstLine[text] = line } else { repeated.insert(text) }
            }
            guard let first = repeated.min() else { return }
            throw .duplicateKeys(repeated.sorted(), line: firstLine[first]!)
        }

        mutating func next() throws(YAMLSyntaxError) -> Event {
            var event = yaml_event_t()
            guard yaml_parser_parse(parser, &event) == 1 else { throw error() }
            return Event(raw: event)
        }

        /// libyaml's error, as it describes it (marks from 0; ours from 1).
        func error() -> YAMLSyntaxError {
            let parser = parser.pointee
            let problem = parser.problem.map { String(cString: $0) } ?? "unknown problem"
            switch parser.error {
            case YAML_READER_ERROR:
                return .unreadable(problem: problem)
            case YAML_SCANNER_ERROR, YAML_PARSER_ERROR, YAML_COMPOSER_ERROR:
                return .syntax(
                    context: parser.context.map { String(cString: $0) }, problem: problem, line: Int(parser.problem_mark.line) + 1,
                    column: Int(parser.problem_mark.column) + 1)
            default:
                return .memory
            }
        }

        static func string(_ bytes: UnsafeMutablePointer<yaml_char_t>?) -> String {
            guard let bytes else { return "" }
            return String(cString: bytes)
        }
    }

    /// One parser event, deleted by whoever consumes it.
    private struct Event {
        var raw: yaml_event_t
        var type: yaml_event_type_t { raw.type }
        var line: Int { Int(raw.start_mark.line) + 1 }
        var column: Int { Int(raw.start_mark.column) + 1 }

        func delete() {
            var raw = raw
            yaml_event_delete(&raw)
        }
    }
}
