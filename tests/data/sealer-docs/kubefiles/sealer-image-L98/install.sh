#!/bin/bash
echo business
