#!/bin/sh
echo "hello from $(cat /etc/hostname) as $(id -un) (uid $(id -u)) in $(pwd)"
