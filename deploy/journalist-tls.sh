#!/bin/sh
# Certificates for the journalist API over TLS and mutual TLS (docs/admin.md, "Journalist
# API over TLS", quotes these commands; tests/tls_recipe.rs runs this script). OpenSSL
# 1.1.1 or 3.x. Every certificate is X.509 version 3 with the extensions rustls needs: a
# version 1 certificate (what `openssl x509 -req` makes without -extfile) is refused.
#
#   journalist-tls.sh ca DIR          a private CA: DIR/ca.pem (public), DIR/ca.key (secret)
#   journalist-tls.sh server DIR HOST the API's certificate for HOST (its .onion address,
#                                     DNS name or IP address): DIR/journalist-cert.pem, -key.pem
#   journalist-tls.sh client DIR NAME one journalist's certificate: DIR/NAME-cert.pem, -key.pem
#
# Run it on the offline machine (or any machine that will keep ca.key safe). The server
# gets ca.pem (as journalist.client_ca), journalist-cert.pem and journalist-key.pem; each
# journalist gets ca.pem (as --ca-cert) and their own NAME-cert.pem and NAME-key.pem.
# One CA signs both sides here; nothing stops you using two.
set -eu
umask 077

usage() {
    echo "usage: $0 ca DIR | server DIR HOST | client DIR NAME" >&2
    exit 2
}

[ $# -ge 2 ] || usage
what=$1
dir=$2
cd "$dir"

# A random 128-bit serial, so no serial file needs keeping. (The CA's name gets a random
# suffix too: two CAs of the same name make a wrong client certificate look like a bad
# signature, TLS alert DecryptError, rather than an unknown CA.)
serial() {
    echo "0x$(openssl rand -hex 16)"
}

case "$what" in
ca)
    [ $# -eq 2 ] || usage
    [ ! -e ca.key ] || { echo "$dir/ca.key exists already; not overwriting it" >&2; exit 1; }
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -days 3650 -subj "/CN=agedrop journalist CA $(openssl rand -hex 4)" -set_serial "$(serial)" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout ca.key -out ca.pem
    ;;
server)
    [ $# -eq 3 ] || usage
    host=$3
    case "$host" in
    *[!0-9.]* | "") san="DNS:$host" ;;
    *) san="IP:$host" ;;
    esac
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" \
        "subjectAltName=$san" > journalist.ext
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=$host" -keyout journalist-key.pem -out journalist.csr
    openssl x509 -req -in journalist.csr -CA ca.pem -CAkey ca.key -set_serial "$(serial)" \
        -days 825 -extfile journalist.ext -out journalist-cert.pem
    rm journalist.csr journalist.ext
    ;;
client)
    [ $# -eq 3 ] || usage
    name=$3
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=clientAuth" > "$name.ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=$name" -keyout "$name-key.pem" -out "$name.csr"
    openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -set_serial "$(serial)" \
        -days 825 -extfile "$name.ext" -out "$name-cert.pem"
    rm "$name.csr" "$name.ext"
    ;;
*)
    usage
    ;;
esac
