#!/bin/sh
echo "hello from $(hostname) as $(id -un) (uid $(id -u)) in $(pwd)"
