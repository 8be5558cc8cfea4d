"""Plain data of a cluster: the Clusterfile, the ClusterImage and the types everyone shares."""
