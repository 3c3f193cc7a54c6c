from aia_client import AIAClient
import asyncio

async def main():
    # Initialize client
    client = AIAClient(
        client_id="your_client_id",
        client_secret="your_client_secret",
        environment="production"  # or "staging"
    )

    try:
        # Health check
        health = await client.health.check()
        print(f"API Status: {health.status}")

        # Submit task
        task = await client.tasks.submit(
            task_type="data_analysis",
            description="Analyze customer behavior",
            priority="high",
            requirements={
                "data_source": "customer_interactions",
                "analysis_depth": "comprehensive"
            }
        )

        print(f"Task submitted: {task.task_id}")

        # Monitor task progress
        while task.status not in ["completed", "failed"]:
            await asyncio.sleep(5)
            task = await client.tasks.get(task.task_id)
            print(f"Task progress: {task.progress}%")

        if task.status == "completed":
            print(f"Task results: {task.results}")
        else:
            print(f"Task failed: {task.error}")

        # Query knowledge graph
        kg_results = await client.knowledge_graph.semantic_search(
            query="high-value customers in technology sector",
            limit=10
        )

        for result in kg_results.results:
            print(f"Found: {result.entity_data['name']} (Score: {result.similarity_score})")

        # Get business intelligence dashboard
        dashboard = await client.business_intelligence.get_dashboard()
        print(f"Monthly Revenue: ${dashboard.metrics.revenue.current_month:,.2f}")
        print(f"Active Customers: {dashboard.metrics.customers.total_active}")

    except Exception as e:
        print(f"Error: {e}")

    finally:
        await client.close()

if __name__ == "__main__":
    asyncio.run(main())
