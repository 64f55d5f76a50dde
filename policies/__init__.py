"""LSTM PPO with an asymmetric actor-critic (Dactyl appendix D): models, storage, PPO, runner, backends."""
