#!/bin/bash
kubectl create -f install.yaml
kubectl create -f redirect-registry
echo "kyverno is running"
