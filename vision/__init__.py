"""Pose estimator of the cube from three cameras (Dactyl section 5, table 12).

renders -> dataset (sharded npz + manifest) -> train -> evaluate -> inference / ONNX; one preprocessing
function (vision.preprocess.preprocess) serves training, evaluation and the ROS node.
"""
