#!/usr/bin/env bash
# build.sh — bench (not a test): cold and cached build of one 7-step Dockerfile with
# ibuild vs `buildah bud --layers` and `ch-image build`, rootless, one run, medians and
# ratios (hyperfine). Everything lives in a scratch dir on tmpfs (the root ext4 of our VMs
# is slow at small-file writes).
#
#   benches/build.sh            # as root: runs the tools as imago-sub (subuid range)
#   BENCH_USER=me RUNS=10 benches/build.sh
#
# Needs: cargo-built ibuild + iimage (target/release or $IMAGO_BIN), buildah, ch-image,
# hyperfine, busybox-static (scripts/make-busybox-rootfs.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
U=${BENCH_USER:-imago-sub}
RUNS=${RUNS:-10}
BIN=${IMAGO_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release}
[ -x "$BIN/ibuild" ] || { echo "build.sh: $BIN/ibuild missing: cargo build --release -p ibuild -p iimage (or set IMAGO_BIN)" >&2; exit 1; }
for t in buildah ch-image hyperfine; do command -v $t >/dev/null || { echo "build.sh: $t missing" >&2; exit 1; }; done
UID_=$(id -u "$U")
BASE=${IMAGO_TEST_TMP:-/var/tmp/imago-test}
W=$BASE/bench-build-$$; rm -rf "$W"; install -d -o "$U" "$W"
trap 'runuser -u "$U" -- buildah --root "$W/buildah" --runroot "$W/buildah-run" rm -a >/dev/null 2>&1 || true; runuser -u "$U" -- buildah unshare rm -rf "$W" 2>/dev/null || true; rm -rf "$W"' EXIT
install -d -m 700 -o "$U" "/run/user/$UID_"
cp "$BIN/ibuild" "$BIN/iimage" "$W/"; chmod 755 "$W/ibuild" "$W/iimage"
ENVV=(env -i HOME="$W/home" USER="$U" LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
      XDG_RUNTIME_DIR="/run/user/$UID_" IMAGO_ROOT="$W/store" CH_IMAGE_STORAGE="$W/ch"
      GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost)
as_u() { (cd "$W" && runuser -u "$U" -- "${ENVV[@]}" "$@"); }
install -d -o "$U" "$W/home" "$W/ctx"
scripts/make-busybox-rootfs.sh "$W/busybox.tar"; chown "$U" "$W/busybox.tar"
cat > "$W/ctx/Dockerfile" <<'DF'
FROM localhost/busybox
RUN echo hi > /a
COPY file.txt /file.txt
ENV X=1
WORKDIR /w
RUN touch f
CMD ["sh"]
DF
echo "hello from the build context" > "$W/ctx/file.txt"; chown -R "$U" "$W/ctx"
as_u git config --global user.name bench; as_u git config --global user.email bench@localhost

# The same base in each tool.
as_u "$W/iimage" import --change 'CMD ["sh"]' "$W/busybox.tar" localhost/busybox >/dev/null
BUILDAH=(buildah --root "$W/buildah" --runroot "$W/buildah-run" --storage-driver overlay)
as_u "${BUILDAH[@]}" import "$W/busybox.tar" localhost/busybox >/dev/null 2>&1 || {
  ctr=$(as_u "${BUILDAH[@]}" from scratch); as_u "${BUILDAH[@]}" add "$ctr" "$W/busybox.tar" /; as_u "${BUILDAH[@]}" commit -q "$ctr" localhost/busybox >/dev/null; }
as_u ch-image import "$W/busybox.tar" localhost/busybox >/dev/null

H=(hyperfine -N --style basic --export-json)
echo "== ibuild, buildah bud --layers, ch-image build: $RUNS runs each (user $U)" >&2
as_u hyperfine -N --style basic -w 1 -r "$RUNS" --export-json "$W/cold.json" \
  -n "ibuild cold" "$W/ibuild --no-cache -q -t bt-ibuild $W/ctx" \
  -n "buildah cold" "${BUILDAH[*]} bud --layers --no-cache -q -t localhost/bt-buildah $W/ctx" \
  -n "ch-image cold" "ch-image build --rebuild -t bt-ch -f $W/ctx/Dockerfile $W/ctx" >&2
as_u hyperfine -N --style basic -w 2 -r "$RUNS" --export-json "$W/warm.json" \
  -n "ibuild cached" "$W/ibuild -q -t bt-ibuild $W/ctx" \
  -n "buildah cached" "${BUILDAH[*]} bud --layers -q -t localhost/bt-buildah $W/ctx" \
  -n "ch-image cached" "ch-image build -t bt-ch -f $W/ctx/Dockerfile $W/ctx" >&2
python3 - "$W/cold.json" "$W/warm.json" <<'PY'
import json, sys
print("| case | median | vs ibuild |")
print("|---|---|---|")
for f in sys.argv[1:]:
    r = json.load(open(f))["results"]
    base = r[0]["median"]
    for x in r:
        print(f"| {x['command']} | {x['median']*1000:.1f} ms | {x['median']/base:.2f}x |")
PY
