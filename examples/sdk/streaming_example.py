import asyncio
from aia_client import AIAStreamingClient

async def stream_knowledge_graph_updates():
    """Example of streaming knowledge graph updates"""

    client = AIAStreamingClient(
        client_id="your_client_id",
        client_secret="your_client_secret"
    )

    try:
        # Subscribe to knowledge graph updates
        async for update in client.knowledge_graph.stream_updates(
            filters={
                "entity_types": ["customer", "product"],
                "change_types": ["created", "updated", "relationship_added"]
            }
        ):
            print(f"Knowledge Graph Update: {update.change_type}")
            print(f"Entity: {update.entity_id} ({update.entity_type})")
            print(f"Timestamp: {update.timestamp}")

            if update.change_type == "relationship_added":
                print(f"New relationship: {update.relationship}")

            # Process update in your application
            await process_kg_update(update)

    except KeyboardInterrupt:
        print("Streaming stopped")
    finally:
        await client.close()

async def stream_task_updates():
    """Example of streaming task status updates"""

    client = AIAStreamingClient(
        client_id="your_client_id",
        client_secret="your_client_secret"
    )

    try:
        # Stream all task updates for the client
        async for task_update in client.tasks.stream_all():
            print(f"Task {task_update.task_id}: {task_update.status}")
            print(f"Progress: {task_update.progress}%")

            if task_update.status == "completed":
                print(f"Results: {task_update.results}")
                # Send notification, update UI, etc.
                await notify_task_completion(task_update)

    except Exception as e:
        print(f"Streaming error: {e}")
    finally:
        await client.close()

# Run streaming examples
if __name__ == "__main__":
    # Run both streams concurrently
    asyncio.run(asyncio.gather(
        stream_knowledge_graph_updates(),
        stream_task_updates()
    ))
