import CSystemShims

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A descriptor sent along with a datagram (`SCM_RIGHTS`), as `FDSTORE=1` hands one to systemd.
/// (In a file of its own: a file that imports the C shims and also names the socket type
/// constants made a clean build lose those constants in other files of the module.)
enum DescriptorPassing {
    /// `sendmsg` of `payload` to `address` on `socket` with `descriptor` attached, never waiting
    /// for room; the bytes sent, or -1 with errno.
    static func send(on socket: Int32, to address: UnsafePointer<sockaddr>, length: socklen_t, payload: UnsafeRawBufferPointer, descriptor: Int32) -> Int {
        CSystemShims_sendWithDescriptor(socket, address, length, payload.baseAddress, payload.count, descriptor)
    }
}
