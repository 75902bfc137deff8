#!/usr/bin/env bash
# Build the real upstream programs and images a kdind node needs, from their Go modules.
#
# Usage: scripts/build-upstream.sh DIR
#
# DIR becomes a mirror laid out exactly as the release URLs in kdind.toml are (paths,
# archive formats, member names, a .sha256 file beside each file), so that
#   kdind build --mirror file://DIR --allow-unverified
# with the default kdind.toml takes the files unchanged, as it takes upstream's. Then every
# container image that kubeadm (for kdind.toml's Kubernetes version) and minikube need is
# built from the binaries made here and tagged in the engine with its upstream name.
#
# Programs: kubelet, kubeadm, kubectl and the control plane (one Go build, k8s.io/kubernetes),
# minikube and its storage-provisioner, cri-dockerd, crictl, the CNI plugins, etcd, CoreDNS,
# and pause (plain C, built static with the host's gcc). Each is stamped with its version
# the way upstream stamps its release builds.
#
# Everything is cached: Go's module and build caches (GOMODCACHE, GOCACHE; Go's defaults,
# outside the repository) and, under KDIND_UPSTREAM_WORK, one directory per program with a
# stamp of what built it. A second run with nothing changed builds nothing and takes seconds.
#
# Environment:
#   KDIND_UPSTREAM_CONFIG  the kdind.toml to read versions and URLs from (default assets/kdind.toml)
#   KDIND_UPSTREAM_WORK    scratch modules, binaries, stamps (default $XDG_CACHE_HOME/kdind/upstream)
#   KDIND_UPSTREAM_BASE    base image of the images that need Debian packages (kube-proxy);
#                          default kdind-local/debian:trixie (scripts/local-base-image.sh)
#   KDIND_UPSTREAM_IMAGES  0: build the programs and the mirror only, no images
#   GOARCH                 the architecture to build for (default: Go's own)
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
started=$(date +%s)

log() { printf 'build-upstream [%4ss]: %s\n' "$(($(date +%s) - started))" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

[ $# -eq 1 ] || {
  echo "usage: $0 DIR" >&2
  exit 2
}
mkdir -p "$1"
mirror="$(cd "$1" && pwd)"
config="${KDIND_UPSTREAM_CONFIG:-$here/assets/kdind.toml}"
work="${KDIND_UPSTREAM_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/kdind/upstream}"
base_image="${KDIND_UPSTREAM_BASE:-kdind-local/debian:trixie}"
command -v go >/dev/null || die "Go is not installed (Go 1.25 or newer is needed)"
GOARCH="${GOARCH:-$(go env GOARCH)}"
export GOARCH GOOS=linux GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
go_version="$(go env GOVERSION)"
mkdir -p "$work/src" "$work/bin"

# --- kdind.toml ------------------------------------------------------------------------

# toml_value TABLE KEY: a string value from kdind.toml ("" for the top level).
toml_value() {
  awk -v table="$1" -v key="$2" '
    /^[[:space:]]*\[/ { current = $0; gsub(/[][[:space:]]/, "", current); next }
    current == table && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
      sub(/^[^=]*=[[:space:]]*"/, ""); sub(/".*$/, ""); print; exit
    }' "$config"
}

kubernetes_version="$(toml_value "" kubernetes_version)"
[ -n "$kubernetes_version" ] || die "no kubernetes_version in $config"

# artifact_version NAME: the version kdind.toml gives an artifact (Kubernetes' for its three).
artifact_version() {
  case "$1" in
    kubectl | kubeadm | kubelet) echo "$kubernetes_version" ;;
    *) toml_value "artifacts.$1" version ;;
  esac
}

# mirror_path NAME: where the artifact's URL lands under DIR (as `kdind build --mirror` maps it).
mirror_path() {
  local url
  url="$(toml_value "artifacts.$1" url)"
  [ -n "$url" ] || die "no url for artifacts.$1 in $config"
  url="${url//\{version\}/$(artifact_version "$1")}"
  url="${url//\{arch\}/$GOARCH}"
  echo "$mirror/${url#*://}"
}

# --- Go builds -------------------------------------------------------------------------

# module_file MODULE VERSION: the path of the module's go.mod in Go's module cache.
module_file() {
  { go mod download -json "$1@$2" 2>/dev/null || true; } | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p'
}

# module_dir MODULE VERSION: the module's extracted source in Go's module cache.
module_dir() {
  { go mod download -json "$1@$2" 2>/dev/null || true; } | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p'
}

# module_time MODULE VERSION: the version's publication time, used as the build date so that
# builds are reproducible.
module_time() {
  { go mod download -json "$1@$2" 2>/dev/null || true; } | sed -n 's/^[[:space:]]*"Time": "\(.*\)",*$/\1/p' | head -n1
}

# scratch_module DIR MODULE VERSION: a module of our own that requires MODULE@VERSION and
# carries its replacements. A dependency's replacements are ignored by Go, so they are copied:
# a versioned one as it is; k8s.io/kubernetes' ./staging/src/X becomes X at the published
# staging version (v1.A.B -> v0.A.B); other local paths (sibling modules of one repository)
# are left to the module's own requirements, which name the same release.
scratch_module() {
  local dir="$1" module="$2" version="$3" gomod staging
  gomod="$(module_file "$module" "$version")"
  [ -n "$gomod" ] || die "the Go module proxy has no $module@$version (go mod download -json $module@$version says why)"
  staging="v0.${version#v1.}"
  mkdir -p "$dir"
  {
    printf 'module kdind.local/upstream\n\ngo 1.25.0\n\nrequire %s %s\n\n' "$module" "$version"
    go mod edit -print "$gomod" | awk -v staging="$staging" '
      /^replace[[:space:]]*\($/ { block = 1; next }
      block && /^\)/ { block = 0; next }
      /=>/ && (block || /^replace[[:space:]]/) {
        line = $0; sub(/^replace[[:space:]]+/, "", line); sub(/^[[:space:]]+/, "", line)
        split(line, sides, /[[:space:]]*=>[[:space:]]*/)
        split(sides[1], old, /[[:space:]]+/); split(sides[2], new, /[[:space:]]+/)
        if (new[1] ~ /^\.\/staging\/src\//) {
          print "replace " old[1] " => " old[1] " " staging
        } else if (new[1] !~ /^\.\.?\//) {
          print "replace " sides[1] " => " sides[2]
        }
      }'
    # The caller's own replacements (see build_minikube), one `replace` line each.
    [ -z "${replaces:-}" ] || printf '%s\n' "$replaces"
  } >"$dir/go.mod.new"
  if cmp -s "$dir/go.mod.new" "$dir/go.mod.in" 2>/dev/null; then
    rm -f "$dir/go.mod.new"
  else
    mv -f "$dir/go.mod.new" "$dir/go.mod.in"
    cp "$dir/go.mod.in" "$dir/go.mod"
    rm -f "$dir/go.sum"
  fi
}

# go_program KEY MODULE VERSION TAGS LDFLAGS PACKAGE...: build the packages into
# $work/bin/KEY/, unless a stamp says the same inputs built them already. Static
# (CGO_ENABLED=0) unless the caller sets cgo=1.
go_program() {
  local key="$1" module="$2" version="$3" tags="$4" ldflags="$5"
  shift 5
  local out="$work/bin/$key" stamp
  stamp="$(printf '%s\n' "$go_version" "$GOARCH" "${cgo:-0}" "${replaces:-}" "$module" "$version" "$tags" "$ldflags" "$@" | sha256sum | cut -c1-64)"
  if [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
    log "$key $version: up to date"
    return
  fi
  log "$key $version: building $# package(s) of $module"
  local begun
  begun=$(date +%s)
  scratch_module "$work/src/$key" "$module" "$version"
  rm -rf "$out.tmp"
  mkdir -p "$out.tmp"
  (cd "$work/src/$key" && CGO_ENABLED="${cgo:-0}" go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$out.tmp/" "$@" 2>&1 |
    { grep -v -e '^go: downloading' -e '^go: finding' -e '^go: found' >&2 || true; }) ||
    die "go build of $module@$version failed"
  echo "$stamp" >"$out.tmp/.stamp"
  rm -rf "$out"
  mv "$out.tmp" "$out"
  log "$key $version: built in $(($(date +%s) - begun)) s"
}

kubernetes_ldflags() {
  local version="$1" date="$2" minor flags="-s -w" package
  minor="${version#v1.}"
  minor="${minor%%.*}"
  for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags="$flags -X $package.gitVersion=$version -X $package.gitMajor=1 -X $package.gitMinor=$minor"
    flags="$flags -X $package.gitTreeState=clean -X $package.buildDate=$date"
  done
  echo "$flags"
}

build_kubernetes() {
  local version="$kubernetes_version" date
  date="$(module_time k8s.io/kubernetes "$version")"
  local commands=(kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
  go_program kubernetes k8s.io/kubernetes "$version" "" "$(kubernetes_ldflags "$version" "$date")" \
    "${commands[@]/#/k8s.io/kubernetes/cmd/}"
}

build_minikube() {
  local version
  version="$(artifact_version minikube)"
  local package=k8s.io/minikube/pkg/version
  # The kvm driver's libvirt bindings need cgo, even when they load libvirt at run time
  # (libvirt_dlopen, as upstream's release builds do).
  cgo=1 go_program minikube k8s.io/minikube "$version" libvirt_dlopen \
    "-s -w -X $package.version=$version -X $package.storageProvisionerVersion=$storage_provisioner_tag" \
    k8s.io/minikube/cmd/minikube
  # The storage provisioner (tag v5) elects its leader with an Endpoints lock, which
  # client-go 0.24 and later refuse ("endpoints lock is removed, migrate to ..."): built with
  # minikube's own requirements it exits at start. Upstream's v5 image was built years ago
  # with an older client-go; so is this one: client-go 0.23 and the modules it requires.
  replaces="$(printf 'replace %s => %s %s\n' \
    k8s.io/api k8s.io/api v0.23.17 \
    k8s.io/apimachinery k8s.io/apimachinery v0.23.17 \
    k8s.io/client-go k8s.io/client-go v0.23.17 \
    k8s.io/kube-openapi k8s.io/kube-openapi v0.0.0-20211115234752-e816edb12b65 \
    sigs.k8s.io/structured-merge-diff/v4 sigs.k8s.io/structured-merge-diff/v4 v4.2.3 \
    sigs.k8s.io/json sigs.k8s.io/json v0.0.0-20211020170558-c049b76a60c6)" \
    go_program storage-provisioner k8s.io/minikube "$version" "" \
    "-s -w -X k8s.io/minikube/pkg/storage.version=$storage_provisioner_tag" \
    k8s.io/minikube/cmd/storage-provisioner
}

build_cri_dockerd() {
  local version
  version="$(artifact_version cri-dockerd)"
  go_program cri-dockerd github.com/Mirantis/cri-dockerd "v$version" "" \
    "-s -w -X github.com/Mirantis/cri-dockerd/cmd/version.Version=$version" \
    github.com/Mirantis/cri-dockerd
}

build_crictl() {
  local version
  version="$(artifact_version crictl)"
  go_program crictl sigs.k8s.io/cri-tools "$version" "" \
    "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$version" \
    sigs.k8s.io/cri-tools/cmd/crictl
}

cni_plugins=(bridge dummy host-device ipvlan loopback macvlan ptp tap vlan dhcp host-local static
  bandwidth firewall portmap sbr tuning vrf)

build_cni() {
  local version module=github.com/containernetworking/plugins packages=() plugin dir source
  version="$(artifact_version cni-plugins)"
  source="$(module_dir "$module" "$version")"
  for plugin in "${cni_plugins[@]}"; do
    for dir in main ipam meta; do
      [ -d "$source/plugins/$dir/$plugin" ] && packages+=("$module/plugins/$dir/$plugin")
    done
  done
  go_program cni-plugins "$module" "$version" "" \
    "-s -w -X $module/pkg/utils/buildversion.BuildVersion=$version" "${packages[@]}"
}

build_etcd() {
  go_program etcd go.etcd.io/etcd/server/v3 "v${etcd_tag%-*}" "" "-s -w" go.etcd.io/etcd/server/v3
  # Go names a command after its path without the major version: server/v3 gives `server`.
  [ -e "$work/bin/etcd/etcd" ] || mv "$work/bin/etcd/server" "$work/bin/etcd/etcd"
}

build_coredns() {
  go_program coredns github.com/coredns/coredns "$coredns_tag" "" "-s -w" github.com/coredns/coredns
}

build_pause() {
  local source out="$work/bin/pause" stamp
  source="$(module_dir k8s.io/kubernetes "$kubernetes_version")/build/pause/linux/pause.c"
  [ -f "$source" ] || die "no build/pause/linux/pause.c in k8s.io/kubernetes@$kubernetes_version"
  command -v gcc >/dev/null || die "gcc is needed for pause (apt-get install gcc libc6-dev)"
  stamp="$(cat "$source" <(echo "$pause_tag" "$GOARCH" "$(gcc --version | head -n1)") | sha256sum | cut -c1-64)"
  if [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
    log "pause $pause_tag: up to date"
    return
  fi
  [ "$GOARCH" = "$(go env GOHOSTARCH)" ] || die "pause: cross-compiling C for $GOARCH is not supported"
  mkdir -p "$out"
  gcc -Os -Wall -Werror -static -DVERSION="v$pause_tag" -o "$out/pause" "$source"
  strip "$out/pause"
  echo "$stamp" >"$out/.stamp"
  log "pause $pause_tag: built"
}

# --- the mirror ------------------------------------------------------------------------

# publish FILE TARGET: copy FILE to TARGET with TARGET.sha256 beside it (written last, so a
# mirror file is never newer than its checksum's view of it).
publish() {
  local file="$1" target="$2"
  mkdir -p "$(dirname "$target")"
  if ! cmp -s "$file" "$target" 2>/dev/null; then
    cp "$file" "$target.tmp"
    mv -f "$target.tmp" "$target"
  fi
  echo "$(sha256sum "$target" | cut -d' ' -f1)  $(basename "$target")" >"$target.sha256.tmp"
  mv -f "$target.sha256.tmp" "$target.sha256"
}

# archive OUT DIR MEMBER...: a reproducible gzip'd tar of DIR's MEMBERs (root-owned, fixed
# time, sorted), so the same binaries always give the same archive and the same checksum.
archive() {
  local out="$1" dir="$2"
  shift 2
  tar -C "$dir" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
    --mode='u+rwX,go+rX,go-w' -cf - "$@" | gzip -n -9 >"$out"
}

lay_out_mirror() {
  local stage="$work/stage" stamp key
  # The programs' stamps and what kdind.toml says of versions and URLs (nothing else in it
  # changes the mirror).
  stamp="$(
    for key in kubernetes minikube cri-dockerd crictl cni-plugins; do cat "$work/bin/$key/.stamp"; done
    grep -E '^[[:space:]]*(\[|kubernetes_version|version|url)' "$config"
  )"
  stamp="$(echo "$stamp" | sha256sum | cut -c1-64)"
  if [ "$(cat "$mirror/.kdind-upstream" 2>/dev/null)" = "$stamp" ]; then
    log "mirror in $mirror: up to date"
    return
  fi
  rm -rf "$stage"
  mkdir -p "$stage"
  local name
  for name in kubelet kubeadm kubectl; do
    publish "$work/bin/kubernetes/$name" "$(mirror_path "$name")"
  done
  publish "$work/bin/minikube/minikube" "$(mirror_path minikube)"

  mkdir -p "$stage/cri-dockerd/cri-dockerd"
  cp "$work/bin/cri-dockerd/cri-dockerd" "$stage/cri-dockerd/cri-dockerd/"
  archive "$stage/cri-dockerd.tgz" "$stage/cri-dockerd" cri-dockerd
  publish "$stage/cri-dockerd.tgz" "$(mirror_path cri-dockerd)"

  archive "$stage/crictl.tgz" "$work/bin/crictl" crictl
  publish "$stage/crictl.tgz" "$(mirror_path crictl)"

  local cni="$stage/cni" source
  mkdir -p "$cni"
  source="$(module_dir github.com/containernetworking/plugins "$(artifact_version cni-plugins)")"
  cp "$source/LICENSE" "$source/README.md" "$cni/"
  for name in "${cni_plugins[@]}"; do cp "$work/bin/cni-plugins/$name" "$cni/"; done
  chmod 0644 "$cni/LICENSE" "$cni/README.md"
  archive "$stage/cni.tgz" "$cni" "${cni_plugins[@]/#/./}" ./LICENSE ./README.md
  publish "$stage/cni.tgz" "$(mirror_path cni-plugins)"
  rm -rf "$stage"
  echo "$stamp" >"$mirror/.kdind-upstream"
  log "mirror laid out in $mirror"
}

# --- images ----------------------------------------------------------------------------

# image TAG DIR: build DIR (a Dockerfile and its files) as TAG unless the image there was
# built from the same inputs (its dev.kdind.upstream label holds their hash).
image() {
  local tag="$1" dir="$2" stamp current
  stamp="$( (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-64)"
  current="$(docker image inspect --format '{{index .Config.Labels "dev.kdind.upstream"}}' "$tag" 2>/dev/null || true)"
  if [ "$current" = "$stamp" ]; then
    log "image $tag: up to date"
    return
  fi
  echo "LABEL dev.kdind.upstream=$stamp" >>"$dir/Dockerfile"
  # The classic builder, as on every engine kdind supports; its deprecation notice is noise.
  DOCKER_BUILDKIT=0 docker build --quiet --force-rm --tag "$tag" "$dir" 2>&1 >/dev/null |
    { grep -v -e 'DEPRECATED: The legacy builder' -e 'BuildKit is currently disabled' \
      -e 'environment-variable\.' -e '^[[:space:]]*$' >&2 || true; } ||
    die "docker build of $tag failed"
  log "image $tag: built"
}

# static_image TAG BINARY PATH ENTRYPOINT: a single static binary on an empty image.
static_image() {
  local tag="$1" binary="$2" path="$3" entrypoint="$4" dir
  dir="$(mktemp -d "$work/image.XXXXXX")"
  cp "$binary" "$dir/program"
  {
    echo "FROM scratch"
    echo "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    echo "COPY program $path"
    [ -z "$entrypoint" ] || echo "ENTRYPOINT [\"$entrypoint\"]"
  } >"$dir/Dockerfile"
  image "$tag" "$dir"
  rm -rf "$dir"
}

kube_proxy_image() {
  local tag="$1" dir
  docker image inspect "$base_image" >/dev/null 2>&1 ||
    die "base image $base_image is missing (scripts/local-base-image.sh makes it)"
  dir="$(mktemp -d "$work/image.XXXXXX")"
  cp "$work/bin/kubernetes/kube-proxy" "$dir/kube-proxy"
  cp "$here/scripts/upstream/iptables-backend" "$dir/iptables-backend"
  cat >"$dir/Dockerfile" <<EOF
FROM $base_image
RUN apt-get update -q \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \\
      iptables nftables conntrack ipset kmod \\
 && rm -rf /var/lib/apt/lists/*
COPY iptables-backend /usr/local/sbin/iptables-backend
RUN /usr/local/sbin/iptables-backend --install
COPY kube-proxy /usr/local/bin/kube-proxy
EOF
  image "$tag" "$dir"
  rm -rf "$dir"
}

build_images() {
  local list ref
  list="$("$work/bin/kubernetes/kubeadm" config images list --kubernetes-version "$kubernetes_version" 2>/dev/null)" ||
    die "kubeadm config images list failed"
  docker version >/dev/null 2>&1 || die "no Docker engine answers (the images are built there)"
  for ref in $list; do
    local name="${ref%:*}"
    case "${name##*/}" in
      kube-proxy) kube_proxy_image "$ref" ;;
      kube-*) static_image "$ref" "$work/bin/kubernetes/${name##*/}" "/usr/local/bin/${name##*/}" "" ;;
      etcd) static_image "$ref" "$work/bin/etcd/etcd" /usr/local/bin/etcd "" ;;
      coredns) static_image "$ref" "$work/bin/coredns/coredns" /coredns /coredns ;;
      pause) static_image "$ref" "$work/bin/pause/pause" /pause /pause ;;
      *) die "kubeadm lists $ref, which this script does not know how to build" ;;
    esac
  done
  static_image "gcr.io/k8s-minikube/storage-provisioner:$storage_provisioner_tag" \
    "$work/bin/storage-provisioner/storage-provisioner" /storage-provisioner /storage-provisioner
}

# --- main ------------------------------------------------------------------------------

main() {
  log "Kubernetes $kubernetes_version for linux/$GOARCH with $go_version; work in $work"
  # The versions of the images come from kubeadm itself, so Kubernetes is built first.
  build_kubernetes
  local images
  images="$("$work/bin/kubernetes/kubeadm" config images list --kubernetes-version "$kubernetes_version" 2>/dev/null)" ||
    die "kubeadm config images list failed"
  etcd_tag="$(echo "$images" | sed -n 's#.*/etcd:##p')"
  coredns_tag="$(echo "$images" | sed -n 's#.*/coredns:##p')"
  pause_tag="$(echo "$images" | sed -n 's#.*/pause:##p')"
  storage_provisioner_tag=v5
  build_minikube
  build_cri_dockerd
  build_crictl
  build_cni
  lay_out_mirror
  if [ "${KDIND_UPSTREAM_IMAGES:-1}" != 0 ]; then
    build_etcd
    build_coredns
    build_pause
    build_images
  fi
  log "done in $(($(date +%s) - started)) s"
}

main
