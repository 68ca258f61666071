"""Models: the students' and sources' configs and initialisation (`build`), one adapter per
source architecture (`archs/`), loading a source (`sources`), and the weight surgery methods
share (neuron selection, shrinking, LoRA)."""
