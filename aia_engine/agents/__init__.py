"""Agents: the protocol, the registry and the built-ins."""

from aia_engine.agents.base import Agent, AgentContext, FunctionAgent
from aia_engine.agents.registry import agent, describe_agents, get_agent, known_agents, register

__all__ = [
    "Agent",
    "AgentContext",
    "FunctionAgent",
    "agent",
    "describe_agents",
    "get_agent",
    "known_agents",
    "register",
]
