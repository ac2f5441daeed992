/// This build's version: the Debian package's (`scripts/build-deb` reads it from this line).
package let brokerVersion = "0.2.0"
