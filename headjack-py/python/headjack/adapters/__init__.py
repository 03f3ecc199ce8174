"""Adapters that plug headjack into agent frameworks, one optional module per framework.

Importing ``headjack`` or this package imports no framework; import the module you need, with
its framework installed (``pip install ./headjack-py[openai-agents]`` and so on):

- ``headjack.adapters.openai_agents``: a sandbox client for the OpenAI Agents SDK.
- ``headjack.adapters.deepagents``: a sandbox backend for deepagents.
"""
