import CMiniUPnPc

/// UPnP IGD port mapping through libminiupnpc. The mapping service itself arrives with
/// the UPnP work; for now this module pins the library and API version webseed builds
/// against, so set-up and CI prove libminiupnpc is present and linkable.
public enum PortMapping {
    /// `MINIUPNPC_API_VERSION` of the headers compiled against (17 on Debian 12).
    public static let libraryAPIVersion = Int(MINIUPNPC_API_VERSION)

    /// A human-readable text for a UPnP error code, from the library itself.
    public static func describe(errorCode: Int32) -> String {
        guard let text = strupnperror(errorCode) else { return "UPnP error \(errorCode)" }
        return String(cString: text)
    }
}
