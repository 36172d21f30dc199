#!/usr/bin/env bash
# Downloads the full data sets the project evaluates on into a folder, in the layout the loaders
# expect (the folder is then given to gradcon as --data-dir or GRADCON_DATA):
#
#   DIR/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
#   DIR/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
#   DIR/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin
#
# Usage: data/fetch.sh DIR [mnist] [fashion-mnist] [cifar10]     (all three by default)
#
# Every file is checked against the MD5 sum its publisher (or torchvision, for the MNIST and
# Fashion-MNIST files) lists; a mismatch stops the script and leaves the file for inspection.
#
# Without internet: on Debian and Ubuntu, `apt-get install dataset-fashion-mnist` ships the
# Fashion-MNIST files under /usr/share/datasets/fashion-mnist; copy or link them to
# DIR/fashion-mnist. (Its gzip files may be compressed anew, so their MD5 sums can differ from
# the ones below.)
set -euo pipefail

if [ $# -lt 1 ]; then
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
dir=$1
shift
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(mnist fashion-mnist cifar10)

download() { # url dest
  if command -v curl >/dev/null; then
    curl -fL --retry 3 -o "$2" "$1" || { echo "fetch.sh: cannot download $1" >&2; return 1; }
  elif command -v wget >/dev/null; then
    wget -O "$2" "$1" || { echo "fetch.sh: cannot download $1" >&2; return 1; }
  else
    echo "fetch.sh: neither curl nor wget is installed" >&2
    exit 1
  fi
}

verify() { # file md5
  local got
  got=$(md5sum "$1" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    echo "fetch.sh: $1: MD5 $got, expected $2 (download damaged or changed upstream)" >&2
    return 1
  fi
}

fetch_idx() { # folder base-url name=md5...
  local sub=$1 base=$2
  shift 2
  mkdir -p "$dir/$sub"
  for entry in "$@"; do
    local name=${entry%%=*} md5=${entry##*=}
    local dest="$dir/$sub/$name"
    if [ -f "$dest" ] && [ "$(md5sum "$dest" | cut -d' ' -f1)" = "$md5" ]; then
      echo "$dest: present"
      continue
    fi
    download "$base/$name" "$dest.part" || return 1
    verify "$dest.part" "$md5" || return 1
    mv "$dest.part" "$dest"
    echo "$dest: ok"
  done
}

for set in "${sets[@]}"; do
  case $set in
    mnist)
      # Yann LeCun's site; it sometimes refuses downloads, so torchvision's mirror is tried next.
      for base in https://yann.lecun.com/exdb/mnist https://ossci-datasets.s3.amazonaws.com/mnist; do
        if fetch_idx mnist "$base" \
          train-images-idx3-ubyte.gz=f68b3c2dcbeaaa9fbdd348bbdeb94873 \
          train-labels-idx1-ubyte.gz=d53e105ee54ea40749a09fcbcd1e9432 \
          t10k-images-idx3-ubyte.gz=9fb629c4189551a2d022fa330f9573f3 \
          t10k-labels-idx1-ubyte.gz=ec29112dd5afa0611ce80d1b7f02629c; then
          break
        fi
        [ "$base" != https://ossci-datasets.s3.amazonaws.com/mnist ] || exit 1
      done
      ;;
    fashion-mnist)
      fetch_idx fashion-mnist http://fashion-mnist.s3-website.eu-central-1.amazonaws.com \
        train-images-idx3-ubyte.gz=8d4fb7e6c68d591d4c3dfef9ec88bf0d \
        train-labels-idx1-ubyte.gz=25c81989df183df01b3e8a0aad5dffbe \
        t10k-images-idx3-ubyte.gz=bef4ecab320f06d8554ea6380940ec79 \
        t10k-labels-idx1-ubyte.gz=bb300cfdad3c16e7a12a480ee83cd310 || exit 1
      ;;
    cifar10)
      # The binary version, from Alex Krizhevsky's page.
      mkdir -p "$dir"
      tgz="$dir/cifar-10-binary.tar.gz"
      if [ ! -f "$dir/cifar-10-batches-bin/test_batch.bin" ]; then
        download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz "$tgz.part" || exit 1
        verify "$tgz.part" c32a1d4ab5d03f1284b67883e8d87530 || exit 1
        tar -xzf "$tgz.part" -C "$dir"
        rm "$tgz.part"
      fi
      echo "$dir/cifar-10-batches-bin: ok"
      ;;
    *)
      echo "fetch.sh: unknown data set '$set' (mnist, fashion-mnist, cifar10)" >&2
      exit 2
      ;;
  esac
done
