"""Running models outside Olive: genai chat, the PyTorch reference, model builders."""
