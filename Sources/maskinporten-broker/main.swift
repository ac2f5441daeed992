// `maskinporten-broker`: the command users and services run.
//
// `token` and `health` are run here, by a small executable with neither Foundation nor OpenSSL
// (statically linked in the release build, so the dynamic loader has nothing to do): services
// call `token` once per request they make, and start-up is most of its time. Every other
// command, and any `token` or `health` call this parser does not take as well-formed (help,
// unknown options, a missing profile), is handed on with execv(2), same process and arguments, to
// `maskinporten-brokerd` next to this executable, which has every command and explains errors.
import BrokerClient

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

let arguments = Array(CommandLine.arguments.dropFirst())
switch ClientInvocation(arguments) {
case .token(let request)?:
    exit(ClientCommands.token(request))
case .health(let socket, let ready, let timeoutSeconds)?:
    exit(ClientCommands.health(socket: socket, ready: ready, timeoutSeconds: timeoutSeconds))
case .api(let request)?:
    exit(ClientCommands.api(request))
case .usage(let message)?:
    printError(message)
    exit(ClientCommands.apiUsage)
case .version?:
    print(brokerVersion)
    exit(0)
case nil:
    exit(FullExecutable.exec(arguments))
}
